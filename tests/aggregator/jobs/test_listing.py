"""The merged job listing: three backends paging differently, pages that concatenate to one order, every
job exactly once while jobs are created and deleted and backends fail between pages; tampered tokens."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from aggregator.federation.errors import BackendResponseInvalid, BackendUnavailable
from aggregator.jobs import ids, listing
from aggregator.jobs.cursor import CursorCodec, PageTokenInvalid
from tests.aggregator.jobs.fake_listings import ROOT, START, FakeBackend, Federation


def populate(federation: Federation, count: int = 36, seed: int = 7) -> None:
    """Jobs interleaved in time over the backends, several in the same second (ties), added out of order."""
    rng = random.Random(seed)
    moments = [START + timedelta(seconds=rng.randint(0, 20)) for _ in range(count)]
    rng.shuffle(moments)
    backends = list(federation.backends.values())
    for moment in moments:
        backend = rng.choice(backends)
        if backend.local_time:
            moment += timedelta(milliseconds=rng.choice([0, 0, 250]))
        backend.add(moment)


@pytest.fixture
def federation() -> Federation:
    fed = Federation(FakeBackend("a", "offset", cap=3), FakeBackend("b", "keyset", cap=5, local_time=True),
                     FakeBackend("c", "single", cap=0))
    populate(fed)
    assert all(len(b.jobs) >= 6 for b in fed.backends.values())
    return fed


def assert_exactly_once(listed: list[str]) -> None:
    assert len(listed) == len(set(listed)), [x for x in listed if listed.count(x) > 1]


@pytest.mark.parametrize("limit", [1, 2, 7])
def test_pages_concatenate_to_the_merged_order(federation, limit):
    expected = federation.expected()
    requests, page_number = [], [0]
    fetch = federation.fetch

    def recording(backend_id, size, token):
        requests.append((page_number[0], backend_id, token))
        return fetch(backend_id, size, token)

    federation.fetch = recording
    listed, pages = federation.walk(limit, between=lambda number, listed: page_number.__setitem__(0, number))
    assert listed == expected
    # without deletions a resumed page always fits: no backend is re-read from its start within a page
    rescans = [(n, b) for i, (n, b, token) in enumerate(requests)
               if token is None and any(m == n and c == b and t is not None for m, c, t in requests[:i])]
    assert rescans == []
    assert all(len(page.jobs) == limit for page in pages[:-1])  # every page but the last is full
    assert all(page.missing == [] for page in pages)
    assert len(pages) in (-(-len(expected) // limit), -(-len(expected) // limit) + 1)


def test_no_limit_lists_everything_on_one_page(federation):
    page = federation.page(None)
    assert [job["id"] for job in page.jobs] == federation.expected() and page.next is None


def test_listed_jobs_carry_federated_ids_and_aggregator_links(federation):
    page = federation.page(4)
    for job in page.jobs:
        ref = ids.decode(job["id"])
        original = next(j for j in federation.backends[ref.backend_id].jobs if j["id"] == ref.job_id)
        assert job["links"] == [{"rel": "self", "href": f"{ROOT}jobs/{job['id']}"}]
        assert job["federation:backends"] == [ref.backend_id]
        assert (job["title"], job["status"], job["created"]) == (original["title"], "created", original["created"])


def test_jobs_created_between_pages_wait_for_a_fresh_listing(federation):
    expected = federation.expected()
    new = []

    def create(number, listed):
        backend = list(federation.backends.values())[number % 3]
        new.append(ids.encode(backend.id, backend.add(START + timedelta(hours=1, seconds=number))))

    listed, _ = federation.walk(2, between=create)
    assert listed == expected  # nothing twice, nothing left out, none of the new ones
    fresh, _ = federation.walk(5)
    assert fresh[:len(new)] == new[::-1] and fresh == federation.expected()


def test_a_job_in_the_same_second_as_the_position_created_between_pages(federation):
    """A tie with the last listed job: it is newer than the listing, so it must not appear (nor a duplicate)."""
    expected = federation.expected()
    first = federation.page(3)
    last = ids.decode(first.jobs[-1]["id"])
    backend = federation.backends[last.backend_id]
    created = next(j["created"] for j in backend.jobs if j["id"] == last.job_id)
    backend.add(listing_time(created), job_id="0000-sorts-first")
    rest, _ = federation.walk(3)
    listed, token = [job["id"] for job in first.jobs], first.next
    while token:
        page = federation.page(3, token)
        listed += [job["id"] for job in page.jobs]
        token = page.next
    assert listed == expected
    assert ids.encode(backend.id, "0000-sorts-first") in rest


def listing_time(created: str):
    from datetime import datetime

    return datetime.fromisoformat(created)


@pytest.mark.parametrize("limit", [2, 5])
def test_deleted_jobs_never_hide_others(federation, limit):
    """Deleting listed jobs shifts an offset-paged backend's pages under the listing's position: it is then
    re-read from its start (the resumed page no longer begins before the position)."""
    expected = federation.expected()
    a = federation.backends["a"]
    deleted_unlisted = []

    def delete(number, listed):  # a user deleting the jobs they have seen while paging on, but the last
        for job_id in [ids.decode(x).job_id for x in listed if ids.decode(x).backend_id == "a"][:-1]:
            a.delete(job_id)  # shifts a's offset pages by as many
        if number == 2:
            unlisted = next(j["id"] for j in a.ordered() if ids.encode("a", j["id"]) not in listed)
            a.delete(unlisted)
            deleted_unlisted.append(ids.encode("a", unlisted))

    listed, _ = federation.walk(limit, between=delete)
    assert_exactly_once(listed)
    assert listed == [x for x in expected if x not in deleted_unlisted]


def test_deletions_before_the_resumed_page_hide_nothing():
    """Page 1 takes j0..j3 of an offset-paged backend and resumes at its page "2" ([j2, j3]); deleting
    j0..j2 moves j4 to offset 1, before that page: the resumed page then starts after the position, so
    the backend is read again from its start and j4 is listed."""
    a, b = FakeBackend("a", "offset", cap=2), FakeBackend("b", "offset", cap=2)
    fed = Federation(a, b)
    jobs = [a.add(START - timedelta(seconds=n), job_id=f"j{n}") for n in range(8)]
    first = fed.page(4)
    assert [ids.decode(job["id"]).job_id for job in first.jobs] == jobs[:4]
    assert fed.codec.loads(first.next, "alice").positions["a"].resume == "2"
    for job_id in jobs[:3]:
        a.delete(job_id)
    rest = fed.page(4, first.next)
    assert [ids.decode(job["id"]).job_id for job in rest.jobs] == jobs[4:8] and rest.next is None


@pytest.mark.parametrize("failing, calls, limit", [("c", {1}, 2), ("a", {2}, 7)])
def test_a_backend_failing_on_one_page_is_missing_there_and_catches_up(federation, failing, calls, limit):
    """c fails at once; a (3 jobs a page) fails on its second request of the page, after its first
    page's jobs were merged: the page is merged again without a's jobs."""
    expected = federation.expected()
    backend = federation.backends[failing]
    calls_on_page_3 = []

    def fail_on_page_3(number, listed):
        if number == 3:
            backend.calls, backend.fail_on_calls = 0, calls
        elif number == 4:
            calls_on_page_3.append(backend.calls)
            backend.fail_on_calls = set()

    listed, pages = federation.walk(limit, between=fail_on_page_3)
    assert calls_on_page_3 == [max(calls)]
    assert [page.missing for page in pages[:5]] == [[], [], [], [failing], []]
    assert isinstance(pages[3].failures[failing], BackendUnavailable)
    assert all(ids.decode(job["id"]).backend_id != failing for job in pages[3].jobs)
    assert_exactly_once(listed)
    assert sorted(listed) == sorted(expected)

    def of(backend_id, sequence):
        return [x for x in sequence if (ids.decode(x).backend_id == backend_id) == (backend_id == failing)]

    assert of(failing, listed) == of(failing, expected)  # its own jobs still newest first
    others = [x for x in listed if ids.decode(x).backend_id != failing]
    assert others == [x for x in expected if ids.decode(x).backend_id != failing]


def test_a_backend_down_until_the_end_is_missing_on_the_last_page(federation):
    expected = federation.expected()
    c = federation.backends["c"]

    def down_from_page_3(number, listed):
        c.fail = number >= 3

    listed, pages = federation.walk(2, between=down_from_page_3)
    assert pages[-1].missing == ["c"] and pages[-1].next is None
    before = [x for page in pages[:3] for x in (job["id"] for job in page.jobs)]
    assert listed == before + [x for x in expected if x not in before and ids.decode(x).backend_id != "c"]
    assert_exactly_once(listed)


def test_a_backend_joining_mid_listing_adds_the_jobs_after_the_position(federation):
    first = federation.walk(1, max_pages=10**6)[0]  # the complete order without d
    d = FakeBackend("d", "offset", cap=2)
    rng = random.Random(3)
    for _ in range(6):
        d.add(START + timedelta(seconds=rng.randint(0, 20)))
    page1 = federation.page(10)
    federation.backends["d"] = d
    rest, token = [], page1.next
    while token:
        page = federation.page(10, token)
        rest += [job["id"] for job in page.jobs]
        token = page.next
    position = first.index(page1.jobs[-1]["id"])
    full = federation.expected()
    shown_before = [x for x in full if ids.decode(x).backend_id != "d"][:position + 1]
    assert [job["id"] for job in page1.jobs] == shown_before
    boundary = full.index(shown_before[-1])
    assert rest == full[boundary + 1:]


def test_a_backend_removed_mid_listing_is_just_left_out(federation):
    page1 = federation.page(5)
    del federation.backends["b"]
    rest, token = [], page1.next
    while token:
        page = federation.page(5, token)
        rest += [job["id"] for job in page.jobs]
        token = page.next
    listed = [job["id"] for job in page1.jobs] + rest
    assert rest == [x for x in federation.expected() if x not in listed[:5]]


def test_a_paged_backend_listing_oldest_first_is_read_whole_and_sorted():
    """Its first page shows the wrong order (older before newer): it is read whole and sorted from then on."""
    a, b = FakeBackend("a", "offset", cap=2, unsorted=True), FakeBackend("b", "keyset", cap=3)
    fed = Federation(a, b)
    for second in range(0, 20, 2):
        a.add(START + timedelta(seconds=second))
        b.add(START + timedelta(seconds=second + 1))
        b.add(START + timedelta(seconds=second))
    listed, pages = fed.walk(3)
    assert listed == fed.expected()
    assert all(fed.codec.loads(page.next, "alice").positions["a"].whole for page in pages[:-1])


def test_a_listing_that_never_ends_is_missing_not_a_hang(federation):
    federation.backends["a"].fetch = lambda limit, token: ([], "again")
    page = federation.page(5)
    assert page.missing == ["a"] and "did not end within" in page.failures["a"].message
    assert [job["id"] for job in page.jobs] == [x for x in federation.expected() if not x.startswith(
        tuple(ids.encode("a", j["id"]) for j in federation.backends["a"].jobs))][:5]


@pytest.mark.parametrize("answer", [("not a list", None), ([{"title": "no id"}], None), ([], 42)])
def test_a_garbage_listing_is_missing(federation, answer):
    federation.backends["b"].fetch = lambda limit, token: answer
    page = federation.page(50)
    assert page.missing == ["b"] and isinstance(page.failures["b"], BackendResponseInvalid)
    assert [job["id"] for job in page.jobs] == [x for x in federation.expected() if ids.decode(x).backend_id != "b"]


def test_every_backend_down_gives_an_empty_last_page(federation):
    for backend in federation.backends.values():
        backend.fail = True
    page = federation.page(5)
    assert page.jobs == [] and page.missing == ["a", "b", "c"] and page.next is None


@pytest.mark.parametrize("damage", [
    lambda t: t[:len(t) // 2] + ("A" if t[len(t) // 2] != "A" else "B") + t[len(t) // 2 + 1:],
    lambda t: t[:-3],
    lambda t: t + "x",
    lambda t: "garbage",
    lambda t: "x" * 10_000,
])
def test_tampered_page_tokens_are_refused(federation, damage):
    token = federation.page(2).next
    with pytest.raises(PageTokenInvalid) as caught:
        federation.page(2, damage(token))
    assert caught.value.status == 400 and caught.value.code == "PageTokenInvalid"
    assert "Request the first page again" in caught.value.message


def test_a_token_of_another_user_or_aggregator_is_refused(federation):
    token = federation.page(2).next
    federation.user = "mallory"
    with pytest.raises(PageTokenInvalid, match="another user's listing"):
        federation.page(2, token)
    federation.user = "alice"
    federation.codec = CursorCodec("another-secret")
    with pytest.raises(PageTokenInvalid, match="damaged, or was not made by this aggregator"):
        federation.page(2, token)


@pytest.mark.parametrize("content", [
    {"v": 1, "b": {"a": {"k": [True, "x"]}}},
    {"v": 2},
    {"v": 1, "b": {"a": {"k": ["yesterday", "x"]}}},
    {"v": 1, "b": {"a": {"r": "3"}}},  # resumes without a position
    {"v": 1, "b": {"a": {"q": 1}}},
    {"v": 1, "b": []},
])
def test_signed_but_malformed_tokens_are_refused(federation, content):
    import hashlib

    if "s" not in content or content["s"] is None:
        content = {**content, "s": hashlib.sha256(b"alice").hexdigest()[:16]}
    token = federation.codec._serializer.dumps(content)
    with pytest.raises(PageTokenInvalid):
        federation.page(2, token)


def test_tokens_stay_small(federation):
    token = federation.page(2).next
    assert len(token) < 400 and all(ch.isalnum() or ch in "-_." for ch in token)


def test_each_page_asks_each_backend_for_only_what_it_needs(federation):
    """One page of 2 costs one request per backend here (plus one where a tie must be looked past)."""
    for backend in federation.backends.values():
        backend.calls = 0
    federation.page(2)
    assert all(1 <= backend.calls <= 2 for backend in federation.backends.values())
    assert listing.MAX_FETCHES >= 10


@pytest.mark.parametrize("seed", range(60))
def test_random_federations_list_every_job_exactly_once(seed):
    """Random page sizes, paging styles, ties, creations, deletions and failing backends between pages:
    every job that was not deleted before its page appears once (in the merged order when no backend
    failed); no job created meanwhile appears."""
    rng = random.Random(seed)
    styles = ["offset", "keyset", "single"]
    fed = Federation(*(FakeBackend(f"b{i}", rng.choice(styles), cap=rng.randint(1, 6), local_time=rng.random() < .3)
                       for i in range(rng.randint(2, 4))))
    populate(fed, count=rng.randint(0, 40), seed=seed)
    expected = fed.expected()
    deleted, created = set(), set()
    failures = rng.random() < 0.5

    def meddle(number, listed):
        for backend in fed.backends.values():
            backend.fail = failures and rng.random() < 0.2
        for _ in range(rng.randint(0, 2)):
            backend = rng.choice(list(fed.backends.values()))
            if backend.jobs and rng.random() < 0.5:
                job = rng.choice(backend.jobs)
                backend.delete(job["id"])
                deleted.add(ids.encode(backend.id, job["id"]))
            else:
                moment = START + timedelta(seconds=rng.choice([20, 60]) + number)
                created.add(ids.encode(backend.id, backend.add(moment)))

    listed, pages = fed.walk(rng.randint(1, 8), between=meddle)
    assert_exactly_once(listed)
    assert not created & set(listed)
    if not any(page.missing for page in pages):
        assert listed == [x for x in expected if x in set(listed) or x not in deleted]
    elif not pages[-1].missing:  # backends missing on some page caught up later, out of order
        assert sorted(listed) == sorted(x for x in expected if x in set(listed) or x not in deleted)


@pytest.mark.parametrize("limit", [1, 4])
def test_jobs_the_aggregator_holds_merge_in_as_they_are(federation, limit):
    """Split jobs (``LOCAL_SOURCE``): listed once each, in the merged order, their documents unchanged."""
    local = FakeBackend(listing.LOCAL_SOURCE, "single", cap=0)
    for second in (3, 9, 9, 15):
        local.add(START + timedelta(seconds=second), job_id=ids.split_job_id(f"r{second}x{len(local.jobs)}"))
    expected = federation.expected()
    federation.backends[listing.LOCAL_SOURCE] = local
    listed, pages = federation.walk(limit)
    assert_exactly_once(listed)
    assert sorted(listed) == sorted([*expected, *(j["id"] for j in local.jobs)])
    assert [fid for fid in listed if not fid.startswith("s1-")] == expected
    shown = {job["id"]: job for page in pages for job in page.jobs}
    assert all(shown[j["id"]]["links"] == j["links"] for j in local.jobs)  # not rewritten
    created = [listing._created(shown[fid]) for fid in listed]
    assert created == sorted(created, reverse=True)
