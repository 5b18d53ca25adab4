"""Path fields complete from the folder typed so far."""

from loratui.widgets.path_suggester import complete_path


def test_a_path_completes_to_the_first_matching_entry(tmp_path):
    (tmp_path / "loras").mkdir()
    (tmp_path / "lora.safetensors").write_bytes(b"")
    (tmp_path / ".hidden").mkdir()
    assert complete_path(f"{tmp_path}/lora.") == f"{tmp_path}/lora.safetensors"
    assert complete_path(f"{tmp_path}/loras") == f"{tmp_path}/loras/"
    assert complete_path(f"{tmp_path}/") == f"{tmp_path}/lora.safetensors"
    assert complete_path(f"{tmp_path}/.h") == f"{tmp_path}/.hidden/"
    assert complete_path(f"{tmp_path}/zzz") is None
    assert complete_path(f"{tmp_path}/nowhere/x") is None
