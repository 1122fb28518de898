"""A backend's next link of GET /jobs as the paging token kept in the aggregator's cursor: relative to its
API root, and only when it stays on that backend's job listing (the user's credentials for the backend
are sent to whatever it names)."""

import pytest

from aggregator.federation.errors import BackendResponseInvalid
from aggregator.services.job_listing import next_token

ROOT = "http://b1.test/openeo/1.2/"


def page(*links):
    return {"jobs": [], "links": list(links)}


@pytest.mark.parametrize("href, token", [
    (f"{ROOT}jobs?limit=3&page=6", "jobs?limit=3&page=6"),
    ("/openeo/1.2/jobs?page=abc", "jobs?page=abc"),  # relative hrefs resolve against the root
    ("jobs?limit=1&page=x", "jobs?limit=1&page=x"),
])
def test_next_links_on_the_backends_listing_become_relative_tokens(href, token):
    assert next_token(page({"rel": "self", "href": ROOT + "jobs"}, {"rel": "next", "href": href}), "b1", ROOT) == token


def test_no_next_link_is_the_last_page():
    assert next_token(page({"rel": "self", "href": ROOT + "jobs"}), "b1", ROOT) is None
    assert next_token({"jobs": []}, "b1", ROOT) is None


@pytest.mark.parametrize("href", ["http://elsewhere.test/openeo/1.2/jobs?page=2", f"{ROOT}me", f"{ROOT}jobs/j1/logs",
                                  "http://b1.test/other/jobs?page=2", ""])
def test_next_links_elsewhere_are_the_backends_invalid_answer(href):
    with pytest.raises(BackendResponseInvalid, match="b1"):
        next_token(page({"rel": "next", "href": href}), "b1", ROOT)
