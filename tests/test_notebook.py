"""A short tour run in a real Jupyter kernel (nbclient + ipykernel) against the loopback FakeProvider.

A kernel runs its own event loop, which is where async-first clients trip ("This event loop is
already running"); rig_sync has none to clash with. The cells' outputs must read well: responses,
streams and batch results as text, a `batch.map(progress=True)` bar as tqdm's notebook widget.
The FakeProvider runs in this process; the kernel (a subprocess) gets its URL and key in the first
cell's code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rig_sync.testing import FakeProvider

ROOT = Path(__file__).resolve().parents[1]
WIDGET = "application/vnd.jupyter.widget-view+json"
KEY = "sk-notebook-secret-2718"
ADDRESS = re.compile(r"object at 0x[0-9a-f]+")

TOUR = [
    # 0: setup (filled in with the fake's address)
    """from rig_sync import batch
from rig_sync.providers import openai

client = openai.Client({key!r}, base_url={base_url!r}, max_retries=0, timeout=30)
model = client.completion_model("gpt-4o-mini")""",
    # 1: a response displayed as the cell's value
    """resp = model.completion_request("hello notebook").send()
resp""",
    # 2: a streamed answer printed piece by piece
    """stream = model.completion_request("stream me please").stream()
for piece in stream.text_stream():
    print(piece, end="", flush=True)""",
    # 3: the stream itself, once read
    "stream",
    # 4: a forgotten .send()
    """model.completion_request("forgot to send")""",
    # 5: batch fan-out with a progress bar, results displayed
    """results = batch.map(lambda q: model.completion_request(q).send().text, ["one", "two", "three"],
                    max_workers=2, progress=True)
results""",
]


def _value(outputs: list[Any]) -> str:
    """The cell's value (its `execute_result`) as text/plain."""
    results = [o["data"]["text/plain"] for o in outputs if o.get("output_type") == "execute_result"]
    assert len(results) == 1, f"expected one displayed value, got {outputs!r}"
    return str(results[0])


def run_tour(fake: FakeProvider) -> tuple[list[list[Any]], dict[str, Any]]:
    """The outputs of each cell, and the final state of the widgets they showed (by model id)."""
    return run_cells([TOUR[0].format(key=fake.api_key, base_url=fake.base_url), *TOUR[1:]])


def run_cells(cells: list[str]) -> tuple[list[list[Any]], dict[str, Any]]:
    try:
        import ipykernel  # noqa: F401 - the kernel "python3" is ipykernel's
        import nbclient
        import nbformat
    except ImportError as err:
        pytest.fail(f"the notebook test needs the test extras nbclient, nbformat and ipykernel: {err}")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120, startup_timeout=120,
                                     resources={"metadata": {"path": str(ROOT)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"a notebook cell failed:\n{err}")
    except (RuntimeError, TimeoutError, KeyError, OSError) as err:  # no kernel, or it did not start or answer
        pytest.fail(f"the Jupyter kernel 'python3' (ipykernel) could not run the tour: {err!r}")
    widgets = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return [cell.outputs for cell in nb.cells], widgets.get("state", {})


@pytest.fixture(scope="module")
def outputs() -> Any:
    with FakeProvider(require_key=KEY) as fake:  # one kernel for the module: starting one takes a second or two
        cells, widgets = run_tour(fake)
        yield cells, widgets, fake.request_count


def test_every_cell_ran_without_errors(outputs: Any) -> None:
    cells, _, requests = outputs
    for index, cell in enumerate(cells):
        assert not [o for o in cell if o.get("output_type") == "error"], f"cell {index}: {cell!r}"
    assert requests == 5  # one send, one stream, three batch items: all reached the fake
    assert KEY not in json.dumps(cells)  # shown nowhere, though the first cell's code holds it


def test_a_response_displays_its_answer_readably(outputs: Any) -> None:
    shown = _value(outputs[0][1])
    assert "echo: hello notebook" in shown and not ADDRESS.search(shown)


def test_a_streamed_answer_is_printed_and_the_stream_says_it_finished(outputs: Any) -> None:
    cells = outputs[0]
    printed = [o for o in cells[2] if o.get("output_type") == "stream"]
    assert "".join(o["text"] for o in printed) == "echo: stream me please"
    assert all(o["name"] == "stdout" for o in printed)
    shown = _value(cells[3])
    assert shown.startswith("StreamingCompletionResponse(provider='openai', model='gpt-4o-mini', state='finished'")
    assert "text='echo: stream me please'" in shown


def test_a_forgotten_send_shows_the_request_not_an_address(outputs: Any) -> None:
    shown = _value(outputs[0][4])
    assert "forgot to send" in shown and not ADDRESS.search(shown)


def test_batch_progress_is_a_tqdm_widget_and_the_results_display(outputs: Any) -> None:
    cell, state = outputs[0][5], outputs[1]
    shown = [o["data"] for o in cell if o.get("output_type") == "display_data" and WIDGET in o.get("data", {})]
    assert len(shown) == 1, f"expected one progress widget among {cell!r}"
    assert "0/3" in shown[0]["text/plain"]  # the text form, for a viewer without widgets
    # The widget as it was left: tqdm's box of a label, a progress bar and a counter, ended at 3 of 3.
    box = state[shown[0][WIDGET]["model_id"]]["state"]
    parts = [state[ref.removeprefix("IPY_MODEL_")]["state"] for ref in box["children"]]
    bars = [p for p in parts if "max" in p]
    assert [(b["value"], b["max"]) for b in bars] == [(3, 3)]
    assert any("3/3" in str(p.get("value")) for p in parts)
    assert _value(cell) == "['echo: one', 'echo: two', 'echo: three']"


@pytest.fixture(scope="module")
def readme_outputs() -> Any:
    """The README's tour, a cell per block, in one kernel that finds the fake through
    OPENAI_API_KEY / OPENAI_BASE_URL (a kernel inherits the environment it is started with)."""
    from test_readme import python_blocks

    with FakeProvider() as fake, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_API_KEY", fake.api_key)
        env.setenv("OPENAI_BASE_URL", fake.base_url)
        cells, _ = run_cells([block.lstrip("\n") for block in python_blocks()])
        yield cells, fake.request_count


def test_the_readme_tour_runs_in_a_kernel_and_reads_well(readme_outputs: Any) -> None:
    cells, requests = readme_outputs
    for index, cell in enumerate(cells):
        assert not [o for o in cell if o.get("output_type") == "error"], f"README block {index}: {cell!r}"
        text = json.dumps(cell)
        assert not ADDRESS.search(text), f"README block {index} shows an address: {text[:2000]}"
        assert cell, f"README block {index} showed nothing"
    assert requests >= 20
    batch_cells = [cell for cell in cells if any(WIDGET in o.get("data", {}) for o in cell)]
    assert len(batch_cells) == 1  # the batch with progress=True drew tqdm's widget, not a text bar
