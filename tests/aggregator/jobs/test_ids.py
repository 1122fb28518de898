"""Federated job ids: reversible, stable, openEO-valid; malformed ids and removed backends are clear 404s."""

from __future__ import annotations

import random
import re
import string
import uuid

import pytest

from aggregator.jobs import ids
from aggregator.jobs.ids import BackendJobRef, SplitJobRef
from apicore import errors

OPENEO_JOB_ID = re.compile(r"^[\w\-\.~]+$")  # openapi.yaml components.schemas.job_id
BACKEND_CHARS = string.ascii_letters + string.digits + "_-"
JOB_CHARS = string.ascii_letters + string.digits + "_-.~"


def random_cases(seed: int, count: int = 2000):
    rng = random.Random(seed)
    for _ in range(count):
        backend_id = "".join(rng.choice(BACKEND_CHARS) for _ in range(rng.randint(1, 64)))
        kind = rng.random()
        if kind < 0.3:
            job_id = str(uuid.UUID(int=rng.getrandbits(128)))
        elif kind < 0.5:
            job_id = "j-" + uuid.UUID(int=rng.getrandbits(128)).hex + uuid.UUID(int=rng.getrandbits(128)).hex
        elif kind < 0.9:
            job_id = "".join(rng.choice(JOB_CHARS) for _ in range(rng.randint(1, 120)))
        else:  # other backends' ids need not follow the pattern: any text that names one path segment round-trips
            job_id = "".join(chr(rng.randint(33, 0x2FFF)) for _ in range(rng.randint(1, 40))).replace("/", "_")
            job_id = job_id.replace("\\", "_").replace("\x7f", "_")
        if job_id in (".", ".."):  # refused (test_backend_job_ids_that_name_another_resource_are_refused)
            continue
        yield backend_id, job_id


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ids_round_trip_and_match_the_openeo_pattern(seed):
    seen = {}
    for backend_id, job_id in random_cases(seed):
        federated = ids.encode(backend_id, job_id)
        assert OPENEO_JOB_ID.match(federated), federated
        assert federated == federated.lower()  # safe as a folder name on case-insensitive file systems
        assert ids.decode(federated) == BackendJobRef(backend_id, job_id)
        assert ids.locate(federated, {backend_id}) == BackendJobRef(backend_id, job_id)
        assert ids.encode(backend_id, job_id) == federated  # stable: a pure function of the pair
        assert seen.setdefault(federated, (backend_id, job_id)) == (backend_id, job_id)  # no two pairs share one


def test_a_backend_id_that_prefixes_another_stays_apart():
    assert ids.decode(ids.encode("b", "1:x")) == BackendJobRef("b", "1:x")
    assert ids.decode(ids.encode("b1", "x")) == BackendJobRef("b1", "x")
    assert ids.encode("b", "1:x") != ids.encode("b1", "x")


def test_split_job_ids():
    record = uuid.uuid4().hex
    federated = ids.split_job_id(record)
    assert federated == f"s1-{record}" and OPENEO_JOB_ID.match(federated)
    assert ids.decode(federated) == SplitJobRef(record)
    assert ids.locate(federated, set()) == SplitJobRef(record)  # its parts' backends are checked by the service
    with pytest.raises(ValueError):
        ids.split_job_id("Not-A-Record")


def test_an_unknown_backend_prefix_names_the_backend():
    federated = ids.encode("vito", "j-123")
    with pytest.raises(errors.JobNotFound) as caught:
        ids.locate(federated, {"b1", "b2"})
    error = caught.value
    assert error.status == 404 and error.code == "JobNotFound"
    assert "'vito'" in error.message and "no longer part of this federation" in error.message
    assert federated in error.message
    assert ids.owner_of(federated, {"b1", "b2"}) is None
    assert ids.owner_of(federated, {"vito"}) == "vito"


@pytest.mark.parametrize("bad", [
    "", "123", "j-1", "j1-", "j1-!!", "j2-abcd", "s1-", "s1-UPPER", "j1-a", "j1-aaaaaaaa",
    "j1-MFRGG", ids.encode("b1", "job-1").upper(), ids.encode("b1", "job-1")[:-2],
    ids.encode("b1", "job-1") + "a", ids.encode("b1", "job-1") + "=",
])
def test_malformed_ids_are_unknown_jobs(bad):
    with pytest.raises(errors.JobNotFound) as caught:
        ids.locate(bad, {"b1"})
    assert caught.value.status == 404
    assert "not a job id of this federation" in caught.value.message


def test_every_single_character_typo_is_detected():
    federated = ids.encode("b1", "0f8e3c1a-1234-4d2b-9c55-aa11bb22cc33")
    prefix = len("j1-")
    for position in range(prefix, len(federated)):
        for replacement in "abcdefghijklmnopqrstuvwxyz234567":
            typo = federated[:position] + replacement + federated[position + 1:]
            if typo != federated:
                with pytest.raises(errors.JobNotFound):
                    ids.decode(typo)


def test_a_long_garbage_id_is_shortened_in_the_message():
    with pytest.raises(errors.JobNotFound) as caught:
        ids.decode("x" * 5000)
    assert len(caught.value.message) < 400


@pytest.mark.parametrize("job_id", ["..", ".", "/", "../process_graphs/x", "a/b", "..\\x", "a\x00b", "a\r\nb",
                                    "tab\there", "del\x7f"])
def test_backend_job_ids_that_name_another_resource_are_refused(job_id):
    """Regression: the check bytes are no secret, so anyone could make a valid federated id for backend job id
    '..' (the aggregator then called the backend's API root with the user's token), '/' (decoded from %2F by
    the backend: DELETE /jobs/{id}/results answered 204 for no job), or one with control characters."""
    crafted = ids.encode("A", job_id)  # what an attacker can compute
    with pytest.raises(errors.JobNotFound):
        ids.decode(crafted)
    assert ids.owner_of(crafted, {"A"}) is None


def test_backend_job_ids_with_dots_tildes_and_other_text_still_decode():
    for job_id in ("...", ".hidden", "a..b", "~x", "été", "job:1", "a b", "?x#y"):
        assert ids.decode(ids.encode("A", job_id)) == BackendJobRef("A", job_id)
