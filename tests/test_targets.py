import pytest

from hwnas.errors import TargetError
from hwnas.targets import list_targets, load_target

SHIPPED = ["x86-host", "cortex-a76", "rpi4", "jetson-orin", "server-gpu"]


def test_shipped_targets_listed():
    assert set(SHIPPED) <= set(list_targets())


@pytest.mark.parametrize("name", SHIPPED)
def test_target_loads_and_builds_tvm_target(name):
    t = load_target(name)
    tt = t.tvm()
    assert tt.kind.name == t.tvm_target["kind"]
    if t.is_gpu:
        assert tt.host is not None and "arch" in t.tvm_target
    assert t.is_cross == (name != "x86-host")


def test_native_cpu_resolved_when_used():
    t = load_target("x86-host")
    assert t.tvm_target["mcpu"] == "native"                  # listing loads no compiler
    assert t.mcpu not in ("", "native") and t.to_json()["tvm"]["mcpu"] == t.mcpu
    assert str(t.tvm()).count(t.mcpu) == 1


@pytest.mark.parametrize("body,slug", [
    ('[tvm]\nkind = "llvm"\nmcpu = "cortex-a72"\n', "cortex-a72"),
    ('[tvm]\nkind = "llvm"\n', None),                              # no CPU model
    ('[tvm]\nkind = "cuda"\narch = "sm_87"\n', None),              # a GPU
    ('[tvm]\nkind = "llvm"\nmcpu = "../x"\n', None),               # unfit for a folder
])
def test_cpu_slug_names_a_folder_or_nothing(tmp_path, body, slug):
    p = tmp_path / "t.toml"
    p.write_text(body)
    assert load_target(p).cpu_slug == slug


def test_unknown_target_names_choices():
    with pytest.raises(TargetError, match="unknown target 'nope'.*x86-host"):
        load_target("nope")


@pytest.mark.parametrize("body,needle", [
    ('description = "x"\n', "missing key 'tvm'"),
    ('[tvm]\nmcpu = "x"\n', "missing key 'tvm.kind'"),
    ('threads = 0\n[tvm]\nkind = "llvm"\n', "key 'threads'"),
    ('runtime = 3\n[tvm]\nkind = "llvm"\n', "key 'runtime'"),
    ('device = "usb"\n[tvm]\nkind = "llvm"\n', "key 'device'"),
    ('[tvm]\nkind = "llvm"\n[export]\nformat = "zip"\n', "key 'export.format'"),
    ('[tvm\nkind = "llvm"\n', "malformed TOML"),
])
def test_malformed_toml_names_file_and_key(tmp_path, body, needle):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(TargetError) as ei:
        load_target(p)
    msg = str(ei.value)
    assert str(p) in msg and needle in msg and "\n" not in msg


def test_an_unknown_runtime_is_refused_by_the_registry_when_connecting(tmp_path):
    """A target keeps its runtime's name; the runtime registry checks it (one list of names)."""
    from hwnas.runtime import backend_of, connect, runtime_names

    p = tmp_path / "bad.toml"
    p.write_text('runtime = "tflite"\n[tvm]\nkind = "llvm"\n')
    target = load_target(p)
    for resolve in (backend_of, connect):
        with pytest.raises(TargetError) as ei:
            resolve(target)
        msg = str(ei.value)
        assert str(p) in msg and "key 'runtime'" in msg and "'tflite'" in msg and "\n" not in msg
        assert all(name in msg for name in runtime_names())


def test_bad_tvm_target_dict_is_one_line(tmp_path):
    p = tmp_path / "weird.toml"
    p.write_text('[tvm]\nkind = "no-such-kind"\n')
    with pytest.raises(TargetError, match="invalid TVM target"):
        load_target(p).tvm()


def test_thread_affinity_defaults_by_device_and_is_checked(tmp_path):
    assert load_target("x86-host").affinity == "shared"
    assert load_target("rpi4").affinity == "pinned"
    p = tmp_path / "t.toml"
    p.write_text('[tvm]\nkind = "llvm"\n')
    assert load_target(p).affinity == "shared"                     # local by default
    p.write_text('device = "rpc"\naffinity = "shared"\n[tvm]\nkind = "llvm"\n')
    with pytest.raises(TargetError, match="'shared' only for a local device"):
        load_target(p)
    p.write_text('affinity = "loose"\n[tvm]\nkind = "llvm"\n')
    with pytest.raises(TargetError, match=r"key 'affinity' must be one of \['pinned', 'shared'\]"):
        load_target(p)
