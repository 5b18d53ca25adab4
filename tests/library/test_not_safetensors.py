"""A file that is not safetensors at all (a web page, text, random bytes) is refused saying so, in one line."""

import pytest

from engine.home import db_path
from loratui.cli import main


@pytest.mark.parametrize("name, content, says", [
    ("notes.safetensors", b"<!DOCTYPE html>\n<html>Not found</html>\n", "it is text: '<!DOCTYPE html>\\n<html>"),
    ("noise.safetensors", bytes(range(7, 250, 3)), "it holds other binary data"),
    ("tiny.safetensors", b"hi\n", "only 3 bytes"),
    ("weights.txt", b"lora_down 0.1 0.2 0.3\n" * 4, "it is text: 'lora_down 0.1"),
])
def test_a_file_that_is_not_safetensors_says_so(tmp_path, capsys, name, content, says):
    target = tmp_path / name
    target.write_bytes(content)
    assert main(["library", "import", str(target)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[1].startswith("hint: import a LoRA's .safetensors weights"), err
    assert err[0].startswith(f"error: '{name}' is not a safetensors file (") and says in err[0]
    assert "header claims" not in err[0]
    from loratui.db.library import open_db

    if db_path().exists():
        assert open_db().execute("SELECT count(*) FROM adapters").fetchone()[0] == 0
