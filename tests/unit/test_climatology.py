"""climatological_normal and anomaly: values against numpy, the spec's labels and season rules, laziness."""

from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from apicore import errors
from backend.processing.engine.executor import RunContext
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations
from backend.processing.processes.climatology import anomaly, climatological_normal
from backend.processing.processes.cubes import aggregate_temporal_period

MONTHS = [f"{m:02d}" for m in range(1, 13)]


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def cube(times, seed=0, lazy=True) -> xr.DataArray:
    """(t, bands, y, x) float32 with a few no-data values; Dask-backed (one time step per chunk) by default."""
    times = pd.DatetimeIndex(times)
    values = np.random.default_rng(seed).random((len(times), 2, 3, 4)).astype(np.float32)
    values[::7, 0, 0, 0] = np.nan
    data = dsa.from_array(values, chunks=(1, 2, 3, 4)) if lazy else values
    return xr.DataArray(data, dims=("t", "bands", "y", "x"),
                        coords={"t": times, "bands": ["B04", "B08"], "y": [30.0, 20.0, 10.0],
                                "x": [0.0, 10.0, 20.0, 30.0]})


def no_compute(*args, **kwargs):
    raise AssertionError("the cube was computed")


def test_monthly_normals_are_the_means_of_each_month(implementations):
    times = pd.date_range("1999-11-01", "2003-03-01", freq="SMS")  # twice a month, beyond the period
    data = cube(times)
    with dask.config.set(scheduler=no_compute):  # graph building only: nothing may be computed
        normals = implementations.call("climatological_normal", {"data": data, "period": "month",
                                                                 "climatology_period": [2000, 2002]},
                                       {}, RunContext(), "n")
    assert isinstance(normals.data, dsa.Array)
    assert normals.dims == data.dims and list(normals.t.values) == MONTHS
    values = data.values
    inside = (times.year >= 2000) & (times.year <= 2002)
    expected = np.stack([np.nanmean(values[inside & (times.month == m)], axis=0) for m in range(1, 13)])
    np.testing.assert_allclose(normals.values, expected, rtol=1e-6)
    assert normals.dtype == np.float32
    assert list(normals.bands.values) == ["B04", "B08"] and list(normals.x.values) == [0.0, 10.0, 20.0, 30.0]


def test_default_climatology_period_is_1981_to_2010(implementations):
    times = pd.date_range("1980-01-01", "2011-12-01", freq="MS")
    data = cube(times, lazy=False)
    normals = implementations.call("climatological_normal", {"data": data, "period": "climatology-period"},
                                   {}, RunContext(), "n")
    assert list(normals.t.values) == ["climatology-period"]
    inside = (times.year >= 1981) & (times.year <= 2010)
    np.testing.assert_allclose(normals.values[0], np.nanmean(data.values[inside], axis=0), rtol=1e-6)


def test_day_labels_follow_a_365_day_year():
    times = pd.date_range("2003-01-01", "2004-12-31", freq="D")  # 2004 is a leap year
    data = cube(times, lazy=False)
    normals = climatological_normal(data, "day", [2003, 2004])
    assert list(normals.t.values) == [f"{d:03d}" for d in range(1, 366)]
    v = data.values

    def at(day):
        return list(times).index(pd.Timestamp(day))

    # 28 Feb of both years and 29 Feb 2004 share label 059; 1 March is 060 in both years; 31 Dec is 365
    np.testing.assert_allclose(normals.sel(t="059").values,
                               np.nanmean(v[[at("2003-02-28"), at("2004-02-28"), at("2004-02-29")]], axis=0), rtol=1e-6)
    np.testing.assert_allclose(normals.sel(t="060").values,
                               np.nanmean(v[[at("2003-03-01"), at("2004-03-01")]], axis=0), rtol=1e-6)
    np.testing.assert_allclose(normals.sel(t="365").values,
                               np.nanmean(v[[at("2003-12-31"), at("2004-12-31")]], axis=0), rtol=1e-6)


def test_seasons_use_the_december_before_the_period_when_the_cube_has_it():
    times = pd.date_range("1999-12-01", "2002-12-01", freq="MS")  # Dec 1999 ... Dec 2002, monthly
    data = cube(times, lazy=False)
    normals = climatological_normal(data, "season", [2000, 2002])
    assert list(normals.t.values) == ["djf", "mam", "jja", "son"]
    v = data.values
    # DJF: Dec 1999-Feb 2000, Dec 2000-Feb 2001, Dec 2001-Feb 2002; Dec 2002 (its season ends in 2003) never
    djf = [t for t in times if t.month in (12, 1, 2) and t < pd.Timestamp("2002-12-01")]
    np.testing.assert_allclose(normals.sel(t="djf").values,
                               np.nanmean(v[[list(times).index(t) for t in djf]], axis=0), rtol=1e-6)
    son = [list(times).index(t) for t in times if t.month in (9, 10, 11)]
    np.testing.assert_allclose(normals.sel(t="son").values, np.nanmean(v[son], axis=0), rtol=1e-6)


def test_without_the_months_before_the_first_winter_is_left_out():
    times = pd.date_range("2000-01-01", "2002-12-01", freq="MS")  # starts in January of the first year
    data = cube(times, lazy=False)
    normals = climatological_normal(data, "season", [2000, 2002])
    v = data.values
    djf = [list(times).index(t) for t in times
           if t.month in (12, 1, 2) and pd.Timestamp("2000-03-01") <= t < pd.Timestamp("2002-12-01")]
    assert len(djf) == 6  # two winters: Dec 2000-Feb 2001, Dec 2001-Feb 2002 (Jan/Feb 2000 not used)
    np.testing.assert_allclose(normals.sel(t="djf").values, np.nanmean(v[djf], axis=0), rtol=1e-6)


def test_tropical_seasons():
    times = pd.date_range("1999-11-01", "2001-12-01", freq="MS")
    data = cube(times, lazy=False)
    normals = climatological_normal(data, "tropical-season", [2000, 2001])
    assert list(normals.t.values) == ["ndjfma", "mjjaso"]
    v = data.values
    ndjfma = [list(times).index(t) for t in times if (t.month >= 11 or t.month <= 4) and t < pd.Timestamp("2001-11-01")]
    mjjaso = [list(times).index(t) for t in times if 5 <= t.month <= 10]
    assert len(ndjfma) == 12 and len(mjjaso) == 12
    np.testing.assert_allclose(normals.sel(t="ndjfma").values, np.nanmean(v[ndjfma], axis=0), rtol=1e-6)
    np.testing.assert_allclose(normals.sel(t="mjjaso").values, np.nanmean(v[mjjaso], axis=0), rtol=1e-6)


def test_periods_without_time_steps_are_no_data():
    times = pd.to_datetime(["2000-01-15", "2001-01-15", "2001-07-15"])
    normals = climatological_normal(cube(times, lazy=False), "month", [2000, 2001])
    assert np.isnan(normals.sel(t="02").values).all()
    assert not np.isnan(normals.sel(t="07").values[1]).any()


@pytest.mark.parametrize("arguments, words", [
    ({"climatology_period": [1981, 2010]}, ["1981-2010", "2000-01-01", "e.g. [2000, 2002]"]),
    ({"climatology_period": [2002, 2000]}, ["2002", "must be before"]),
    ({"climatology_period": ["x", 2000]}, ["not a year"]),
    ({"period": "week"}, ["'week'", "day, month, season, tropical-season, climatology-period"]),
])
def test_bad_arguments_say_what_to_change(arguments, words):
    data = cube(pd.date_range("2000-01-01", "2002-12-01", freq="MS"), lazy=False)
    with pytest.raises(errors.ProcessParameterInvalid) as info:
        climatological_normal(data, **{"period": "month", "climatology_period": [2000, 2002], **arguments})
    for word in words:
        assert word in info.value.message


def test_already_aggregated_labels_are_refused():
    data = cube(pd.date_range("2000-01-01", "2001-12-01", freq="MS"), lazy=False)
    data = data.assign_coords(t=[f"{t:%Y-%m}" for t in pd.DatetimeIndex(data.t.values)])
    with pytest.raises(errors.ProcessParameterInvalid, match="must be dates"):
        climatological_normal(data, "month", [2000, 2001])


# --- anomaly --------------------------------------------------------------------------------------


def test_anomaly_of_monthly_aggregates_is_data_minus_the_months_normal(implementations):
    times = pd.date_range("2000-01-01", "2002-12-31", freq="10D")
    data = cube(times)
    normals = climatological_normal(data, "month", [2000, 2002])
    monthly = aggregate_temporal_period(data, lambda data, axis, **kwargs: np.nanmean(data, axis=axis), "month")
    assert str(monthly.t.values[0]) == "2000-01"
    with dask.config.set(scheduler=no_compute):
        result = implementations.call("anomaly", {"data": monthly, "normals": normals, "period": "month"},
                                      {}, RunContext(), "n")
    assert isinstance(result.data, dsa.Array)
    assert result.dims == monthly.dims and list(result.t.values) == list(monthly.t.values)
    months = [int(label[5:]) for label in monthly.t.values]
    np.testing.assert_allclose(result.values, monthly.values - normals.values[np.array(months) - 1], rtol=1e-6)


def test_anomaly_of_dated_time_steps_uses_each_dates_period():
    times = pd.date_range("2000-01-01", "2001-12-31", freq="7D")
    data = cube(times, lazy=False)
    normals = climatological_normal(data, "season", [2000, 2001])
    result = anomaly(data, normals, "season")
    seasons = {12: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3, 11: 3}
    index = [seasons[t.month] for t in times]
    np.testing.assert_allclose(result.values, data.values - normals.values[index], rtol=1e-6)
    assert (result.t.values == data.t.values).all()


def test_anomaly_day_labels_match_the_365_day_normals():
    data = cube(pd.to_datetime(["2004-03-01", "2005-03-01"]), lazy=False)
    data = data.assign_coords(t=["2004-061", "2005-060"])  # 1 March in a leap and in a common year
    normals = cube(pd.date_range("2001-01-01", "2001-12-31", freq="D"), lazy=False)
    normals = normals.assign_coords(t=[f"{d:03d}" for d in range(1, 366)])
    result = anomaly(data, normals, "day")
    np.testing.assert_allclose(result.values, data.values - normals.values[[59, 59]], rtol=1e-6)


def test_anomaly_against_a_single_period_normal():
    data = cube(pd.date_range("2000-01-01", "2001-12-01", freq="MS"), lazy=False)
    normals = climatological_normal(data, "climatology-period", [2000, 2001])
    result = anomaly(data, normals, "climatology-period")
    np.testing.assert_allclose(result.values, data.values - normals.values[[0] * 24], rtol=1e-6)


def test_anomaly_without_a_normal_names_it():
    data = cube(pd.date_range("2000-01-01", "2000-12-01", freq="MS"), lazy=False)
    normals = cube(pd.date_range("2000-01-01", "2000-06-01", freq="MS"), lazy=False).assign_coords(t=MONTHS[:6])
    with pytest.raises(errors.ProcessParameterInvalid) as info:
        anomaly(data, normals, "month")
    assert "'07'" in info.value.message and "normals" in info.value.message


def test_anomaly_refuses_labels_of_another_period_and_other_grids():
    data = cube(pd.date_range("2000-01-01", "2000-12-01", freq="MS"), lazy=False)
    normals = cube(pd.date_range("2000-01-01", "2000-12-01", freq="MS"), lazy=False).assign_coords(t=MONTHS)
    text_labels = data.assign_coords(t=[f"2000-{s}" for s in ["djf"] * 12])
    with pytest.raises(errors.ProcessParameterInvalid, match="YYYY-MM"):
        anomaly(text_labels, normals, "month")
    with pytest.raises(errors.ProcessParameterInvalid, match="same cube"):
        anomaly(data, normals.assign_coords(x=[1.0, 2.0, 3.0, 4.0]), "month")
