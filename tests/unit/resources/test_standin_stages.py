"""The stand-in OPA policy (a test double): the shipped policy.wasm is policy.wat compiled, and a loader following
the `opa-wasm` crate's calls (ABI 1.1, the slow path) finds MAS's entrypoints and evaluates each to no violation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wasmtime

from harness.resources import standin_stages

MAS_ENTRYPOINTS = {
    "register/violation",
    "client_registration/violation",
    "authorization_grant/violation",
    "compat_login/violation",
    "email/violation",
}


@pytest.fixture
def standin_policy() -> Path:
    return standin_stages() / "policy"


def _compiled(standin_policy: Path) -> Path:
    return standin_policy / "app" / "policies" / "policy.wasm"


def test_the_shipped_module_is_the_source_compiled(standin_policy: Path) -> None:
    assert _compiled(standin_policy).read_bytes() == wasmtime.wat2wasm((standin_policy / "policy.wat").read_text())


def test_it_loads_and_evaluates_as_opa_wasm_would(standin_policy: Path) -> None:
    store = wasmtime.Store(wasmtime.Engine())
    module = wasmtime.Module(store.engine, _compiled(standin_policy).read_bytes())
    # opa-wasm gives the module its memory (2 pages) and the env imports; the stand-in needs only the memory.
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(2, None)))
    exports = wasmtime.Instance(store, module, [memory]).exports(store)

    def call(name: str, *args: int) -> int:
        function = exports[name]
        assert isinstance(function, wasmtime.Func)
        result = function(store, *args)
        return int(result) if result is not None else 0

    def dump(value: int) -> object:
        address = call("opa_json_dump", value)
        raw = bytes(memory.read(store, address, address + 4096)).split(b"\0", 1)[0]
        return json.loads(raw)

    def load_json(value: object) -> int:
        data = json.dumps(value).encode() + b"\0"
        address = call("opa_malloc", len(data))
        memory.write(store, data, address)
        parsed = call("opa_json_parse", address, len(data))
        call("opa_free", address)
        return parsed

    versions = [exports[name] for name in ("opa_wasm_abi_version", "opa_wasm_abi_minor_version")]
    assert [v.value(store) for v in versions if isinstance(v, wasmtime.Global)] == [1, 1]
    assert dump(call("builtins")) == {}
    entrypoints = dump(call("entrypoints"))
    assert isinstance(entrypoints, dict) and set(entrypoints) == MAS_ENTRYPOINTS
    # MAS's static and dynamic data is tens of kilobytes: the heap grows for it.
    data = load_json({"server_name": "example.org", "padding": "x" * 300_000})
    heap = call("opa_heap_ptr_get")
    for entrypoint in sorted(entrypoints.values()):
        call("opa_heap_ptr_set", heap)
        context = call("opa_eval_ctx_new")
        call("opa_eval_ctx_set_data", context, data)
        call("opa_eval_ctx_set_input", context, load_json({"user": {"username": "alice"}}))
        call("opa_eval_ctx_set_entrypoint", context, entrypoint)
        assert call("eval", context) == 0
        assert dump(call("opa_eval_ctx_get_result", context)) == [{"result": []}], "no violation"
