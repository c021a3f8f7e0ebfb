"""Citations and safety results as providers send them, read into the core's `Citation` and
`SafetyResult`. These ride beside a paid answer, so they are read tolerantly: an item of the wrong
shape is skipped and a field of the wrong type reads as None, never failing the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..completion import Citation, SafetyResult

__all__ = ["openai_citations", "search_citations", "cohere_citations", "gemini_citations",
           "anthropic_citations", "content_filters", "prompt_filters", "gemini_safety", "merge_safety"]


def _str(value: Any) -> str | None:
    return value if value.__class__ is str and value else None


def _int(value: Any) -> int | None:
    return value if value.__class__ is int and value >= 0 else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    return (item for item in (value if isinstance(value, list) else ()) if isinstance(item, dict))


def openai_citations(annotations: Any) -> list[Citation]:
    """OpenAI annotations: Chat Completions nests each under its type
    (`{"type": "url_citation", "url_citation": {url, title, start_index, end_index}}`), the
    Responses API does not (`{"type": "url_citation", "url": …}`; `file_citation` names a file)."""
    out = []
    for item in _dicts(annotations):
        kind = item.get("type")
        body = _obj(item.get(str(kind))) or item
        if kind == "url_citation":
            out.append(Citation(url=_str(body.get("url")), title=_str(body.get("title")),
                                start=_int(body.get("start_index")), end=_int(body.get("end_index"))))
        elif kind in ("file_citation", "container_file_citation"):
            out.append(Citation(title=_str(body.get("filename")), document_id=_str(body.get("file_id")),
                                start=_int(body.get("start_index", body.get("index"))),
                                end=_int(body.get("end_index"))))
    return out


def search_citations(citations: Any, search_results: Any) -> list[Citation]:
    """Perplexity's sources: `search_results` (title, url, snippet) where sent, else the bare URLs
    of `citations`, in the order the answer's [1], [2] … marks count them."""
    found = [Citation(url=_str(r.get("url")), title=_str(r.get("title")), cited_text=_str(r.get("snippet")))
             for r in _dicts(search_results)]
    if found:
        return found
    return [Citation(url=url) for url in (citations if isinstance(citations, list) else ()) if _str(url)]


def cohere_citations(citations: Any) -> list[Citation]:
    """Cohere v2: one citation per source of each cited span (`start`, `end` into the text)."""
    out = []
    for cite in _dicts(citations):
        start, end = _int(cite.get("start")), _int(cite.get("end"))
        for source in _dicts(cite.get("sources")):
            doc = _obj(source.get("document"))
            out.append(Citation(url=_str(doc.get("url")), title=_str(doc.get("title")),
                                document_id=_str(source.get("id")) or _str(doc.get("id")),
                                cited_text=_str(doc.get("snippet")) or _str(doc.get("text")), start=start, end=end))
    return out


def gemini_citations(citation_metadata: Any, grounding_metadata: Any) -> list[Citation]:
    """Gemini: recitation sources (`citationMetadata.citationSources`) and search grounding
    (`groundingMetadata`: each support's span, for every web chunk it rests on)."""
    meta = _obj(citation_metadata)
    out = [Citation(url=_str(s.get("uri")), title=_str(s.get("title")), start=_int(s.get("startIndex")),
                    end=_int(s.get("endIndex"))) for s in _dicts(meta.get("citationSources"))]
    ground = _obj(grounding_metadata)
    chunks = [_obj(c.get("web")) for c in _dicts(ground.get("groundingChunks"))]
    for support in _dicts(ground.get("groundingSupports")):
        segment = _obj(support.get("segment"))
        indices = support.get("groundingChunkIndices")
        for i in indices if isinstance(indices, list) else ():
            if _int(i) is not None and i < len(chunks):
                web = chunks[i]
                out.append(Citation(url=_str(web.get("uri")), title=_str(web.get("title")),
                                    cited_text=_str(segment.get("text")), start=_int(segment.get("startIndex")),
                                    end=_int(segment.get("endIndex"))))
    return out


def anthropic_citations(content: Any) -> list[Citation]:
    """Anthropic Messages: the `citations` of each text block of an answer's `content`. Claude
    splits its answer into text blocks so that each cited claim is a block of its own: `start` and
    `end` span that block in the answer's text (the text blocks joined, as `response.text` is).

    Each kind says where its source is: `web_search_result_location` a `url` and `title`;
    `char_location`, `page_location` and `content_block_location` a document of the request
    (`document_id`: its Files API `file_id`, else its `document_title`, which for a rig_sync
    `Document` is that document's id, else its `document_index` as text); a
    `search_result_location` its `source` (a URL, or the caller's own id). All carry the passage
    quoted (`cited_text`). Offsets into the source (characters, pages, blocks) and
    `encrypted_index` have no place here: they stay in `raw_response`."""
    out = []
    at = 0
    for block in _dicts(content):
        if block.get("type") != "text":
            continue
        text = block.get("text")
        end = at + (len(text) if text.__class__ is str else 0)
        out += [_anthropic_citation(cite, at, end) for cite in _dicts(block.get("citations"))]
        at = end
    return out


def _anthropic_citation(cite: dict[str, Any], start: int, end: int) -> Citation:
    source = _str(cite.get("source"))
    url = _str(cite.get("url")) or (source if source and source.startswith(("https://", "http://")) else None)
    title = _str(cite.get("title")) or _str(cite.get("document_title"))
    index = _int(cite.get("document_index"))
    document = (_str(cite.get("file_id")) or _str(cite.get("document_title"))
                or (None if index is None else str(index)) or (source if url is None else None))
    return Citation(url=url, title=title, document_id=document, cited_text=_str(cite.get("cited_text")),
                    start=start, end=end)


def content_filters(results: Any, target: str) -> list[SafetyResult]:
    """Azure's `content_filter_results` (`{"hate": {"filtered": false, "severity": "safe"},
    "jailbreak": {"filtered": false, "detected": false}, …}`)."""
    out = []
    for category, result in (results.items() if isinstance(results, dict) else ()):
        if not isinstance(result, dict):
            continue
        detected = result.get("detected")
        level = _str(result.get("severity")) or (None if detected is None else
                                                 "detected" if detected is True else "not detected")
        out.append(SafetyResult(str(category), result.get("filtered") is True, level, target))
    return out


def prompt_filters(results: Any) -> list[SafetyResult]:
    """Azure's `prompt_filter_results`: the filters run on each prompt."""
    return [r for item in _dicts(results) for r in content_filters(item.get("content_filter_results"), "prompt")]


def gemini_safety(ratings: Any, target: str, message: str | None = None) -> list[SafetyResult]:
    """Gemini `safetyRatings` (`{"category", "probability", "blocked"?}`); `message` is the
    candidate's `finishMessage` or the prompt's block reason, given to each."""
    return [SafetyResult(_str(r.get("category")) or "unknown", r.get("blocked") is True,
                         _str(r.get("probability")), target, message) for r in _dicts(ratings)]


def merge_safety(seen: dict[tuple[str, str], SafetyResult], results: Iterable[SafetyResult]) -> None:
    """Fold a stream's per-chunk results into one per (target, category): the latest level, and
    blocked once any chunk was blocked."""
    for result in results:
        key = (result.target, result.category)
        old = seen.get(key)
        if old is not None and old.blocked and not result.blocked:
            result = SafetyResult(result.category, True, result.level, result.target, result.message)
        seen[key] = result
