"""Which table a lookup finds when this CPU model's folder holds another configuration of the
space than the one asked for (the ImageNet one, where the shared table is the default's)."""
import json

from hwnas.profile.table import FORMAT, table_path
from hwnas.spaces import get_space
from hwnas.targets import load_target


def _table(path, space_name: str) -> None:
    cfg = get_space(space_name).config()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": FORMAT, "meta": {"target": "x86-host",
                                                           "space": "ofa-mbv3",
                                                           "spaces": [cfg]}, "entries": {}}))


def test_a_cpu_folder_of_another_configuration_is_passed_over(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path))
    cpu = tmp_path / "x86-host" / f"cpu-{load_target('x86-host').cpu_slug}" / "ofa-mbv3.json"
    shared = tmp_path / "x86-host" / "ofa-mbv3.json"
    _table(cpu, "ofa-mbv3-imagenet")
    _table(shared, "ofa-mbv3-fmnist")
    # the ImageNet configuration, by space or by name: this CPU's table
    assert table_path("x86-host", get_space("ofa-mbv3-imagenet")) == cpu
    assert table_path("x86-host", "ofa-mbv3-imagenet") == cpu
    # the small one, and a bare name (the configuration deploy searches): the shared table
    assert table_path("x86-host", get_space("ofa-mbv3-fmnist")) == shared
    assert table_path("x86-host", "ofa-mbv3") == shared
    assert table_path("x86-host", "ofa-mbv3-fmnist") == shared
    # a table that records the small configuration on this CPU wins again
    _table(cpu, "ofa-mbv3-fmnist")
    assert table_path("x86-host", "ofa-mbv3") == cpu
    # writing a new profile still goes to this CPU's folder
    assert table_path("x86-host", "ofa-mbv3", for_writing=True).parent == cpu.parent


def test_a_table_of_another_configuration_serves_when_none_records_the_one_asked_for(
        tmp_path, monkeypatch):
    """The Note10 table records OFA's w1.2 configuration only; a bare name still finds it."""
    monkeypatch.setenv("HWNAS_TABLES", str(tmp_path))
    path = tmp_path / "note10" / "ofa-mbv3.json"
    _table(path, "ofa-mbv3-imagenet")
    assert table_path("note10", "ofa-mbv3") == path
    assert table_path("note10", get_space("ofa-mbv3-fmnist")) == path
