"""A service built with the project's assembler runs a guest program in an inner PVM machine
(machine, pages, poke, invoke to a host call and to halt, peek, expunge: GP 0.7.2 §B.7),
submitted over HTTP to a real server; the report's output is the guest's result."""

from __future__ import annotations

from jamhost.domain.types.work_report import WorkReport
from jamhost.examples import inner_vm
from tests.conftest import make_tenant, simple_package
from tests.integration.test_pipeline import submit, wait_final


def words(blob: bytes) -> list[int]:
    return [int.from_bytes(blob[i : i + 8], "little") for i in range(0, len(blob), 8)]


def test_refine_runs_a_guest_in_an_inner_machine(server_factory, store_keys):
    srv = server_factory(workers=1, **store_keys)
    t = make_tenant(srv, "corevm", code=inner_vm.build())
    with srv.client(t.token) as c:
        ids = [submit(c, simple_package(t.service_id, x.to_bytes(8, "little"), 10**6))
               for x in (5, 1000)]
        assert [p["status"] for p in wait_final(c, ids)] == ["applied", "applied"]
        outputs = []
        for pid in ids:
            report = WorkReport.from_json(c.get(f"/jam/packages/{pid}/report").json()["report"])
            (digest,) = report.results
            assert digest.result.is_ok
            outputs.append(words(digest.result.output))
            assert report.package_spec.erasure_root != bytes(32)
    for (result, code1, host_id, code2, pc, gas_left, machine), x in zip(
        outputs, (5, 1000), strict=True
    ):
        assert result == 3 * x + 1  # the guest's x, tripled by its host, plus one
        assert (code1, host_id) == (3, inner_vm.GUEST_HOST_CALL)  # HOST, ecalli 77
        assert code2 == 0  # HALT
        assert pc == 0  # expunge: GP Ψ leaves ı' = 0 after a halt
        assert 0 < gas_left < inner_vm.GUEST_GAS
        assert machine == 0
