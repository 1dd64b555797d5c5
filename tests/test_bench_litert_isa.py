"""bench/litert_isa.py writes into another library's memory, so its guard must refuse every table
that does not read back as this CPU's features, and the cap must clear exactly what is above AVX2."""
import importlib.util
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
_spec = importlib.util.spec_from_file_location("litert_isa", os.path.join(BENCH, "litert_isa.py"))
litert_isa = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(litert_isa)

ZEN4 = {"rdtscp", "rdpid", "clzero", "clflush", "clflushopt", "pni", "ssse3", "sse4_1", "sse4_2", "sse4a",
        "misalignsse", "avx", "fma", "f16c", "avx2", "avx512f", "avx512cd", "avx512dq", "avx512bw", "avx512vl",
        "avx512_vnni", "avx512_bf16", "cx16", "movbe", "popcnt", "bmi1", "bmi2", "aes", "gfni", "vaes"}


def table_for(flags):
    """The bytes cpuinfo would hold on a CPU with ``flags`` (features Linux does not list: 0)."""
    return bytes(1 if flag in flags else 0 for _, flag in litert_isa.LAYOUT)


def test_a_table_that_matches_the_flags_passes():
    assert litert_isa.check_layout(table_for(ZEN4), ZEN4) == []


def test_a_shifted_layout_is_refused():
    shifted = b"\x00" + table_for(ZEN4)[:-1]            # one field inserted at the front by a newer release
    assert litert_isa.check_layout(shifted, ZEN4)


def test_a_single_disagreeing_feature_is_named():
    table = bytearray(table_for(ZEN4))
    table[[name for name, _ in litert_isa.LAYOUT].index("avx512vnni")] = 0
    assert litert_isa.check_layout(bytes(table), ZEN4) == ["avx512vnni"]


def test_bytes_that_are_not_bools_or_a_short_table_are_refused():
    assert litert_isa.check_layout(table_for(ZEN4)[:-2] + b"\x40\x00", ZEN4)
    assert litert_isa.check_layout(table_for(ZEN4)[:40], ZEN4)


def test_the_cap_keeps_avx2_and_clears_avx512_vnni_and_amx():
    above = litert_isa.ABOVE_AVX2
    assert {"avx512f", "avx512vnni", "avxvnni", "amx_int8", "avx_vnni_int8"} <= above
    assert not {"avx2", "fma3", "f16c", "avx", "bmi2", "popcnt"} & above


def test_cap_in_a_child_process_clears_the_features_it_reports():
    pytest.importorskip("ai_edge_litert", reason="LiteRT is absent: pip install ai-edge-litert")
    code = (f"import sys; sys.path.insert(0, {BENCH!r}); import litert_isa\n"
            "try:\n    print(','.join(litert_isa.cap_avx2()))\n"
            "except litert_isa.CapError as e:\n    print('REFUSED', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if line.startswith("REFUSED"):
        pytest.skip(f"this LiteRT build's cpuinfo table is not the one we know: {line}")
    cleared = set(filter(None, line.split(",")))
    flags = litert_isa.cpu_flags()
    expected = {name for name, flag in litert_isa.LAYOUT if name in litert_isa.ABOVE_AVX2 and flag in flags}
    assert expected <= cleared <= litert_isa.ABOVE_AVX2
