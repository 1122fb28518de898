"""Links of merged documents: what a client may follow from the aggregator's answer.

- ``self``, ``root`` and ``parent`` are the aggregator's own (the backends' are dropped).
- A link into a backend's API (its href starts with the backend's versioned API root) is dropped: the
  client would call that backend directly, where the aggregator's token means nothing, for a resource
  the aggregator does not route (``items``, ``queryables``, ``alternate`` views, ...). Exception: the
  rels in ``KEPT_BACKEND_RELS`` (licence, about, citation, descriptions) lead to public documents a
  user should be able to read, wherever they live.
- Every other link (external documentation, licence texts, DOIs, ...) is kept, once per (rel, href).
"""

from __future__ import annotations

from typing import Iterable, Mapping

OWN_RELS = frozenset({"self", "root", "parent"})
KEPT_BACKEND_RELS = frozenset({"license", "about", "cite-as", "describedby", "author", "copyright"})

JSON = "application/json"


def api_root(url: str) -> str:
    """A versioned API root with exactly one trailing slash."""
    return url.rstrip("/") + "/"


def backend_root(document: Mapping, known: str | None) -> str | None:
    """The backend's API root: the configured url, else its document's ``root`` link."""
    if known:
        return api_root(known)
    for link in link_list(document.get("links")):
        if isinstance(link, dict) and link.get("rel") == "root" and isinstance(link.get("href"), str):
            return api_root(link["href"])
    return None


def link_list(links: object) -> list:
    """A document's ``links`` if they are an array, else none (a backend's garbage must not break a merge)."""
    return links if isinstance(links, list) else []


def own_links(root_url: str, self_path: str, parent_path: str | None = None) -> list[dict]:
    root = api_root(root_url)
    links = [{"rel": "self", "href": root + self_path, "type": JSON}, {"rel": "root", "href": root, "type": JSON}]
    if parent_path is not None:
        links.append({"rel": "parent", "href": root + parent_path, "type": JSON})
    return links


def merge_links(per_backend: Iterable[tuple[list | None, str | None]], own: list[dict]) -> list[dict]:
    """``own`` links, then each backend's links that are kept (see the module doc), once per (rel, href).

    ``per_backend`` holds ``(links, backend API root or None)`` in preference order.
    """
    result = list(own)
    seen = {(link["rel"], link["href"]) for link in own}
    for links, root in per_backend:
        for link in link_list(links):
            if not isinstance(link, dict):
                continue
            rel, href = link.get("rel"), link.get("href")
            if rel in OWN_RELS or not isinstance(href, str) or (rel, href) in seen:
                continue
            if root and href.startswith(root) and rel not in KEPT_BACKEND_RELS:
                continue
            seen.add((rel, href))
            result.append(link)
    return result
