"""LoRA files in every supported layout, built once per session from the tiny built-ins."""

import shutil
from pathlib import Path

import pytest
from library_loras import KOHYA_METADATA, llm_peft, sd_diffusers, sdxl_diffusers, to_kohya


def _builtin(name: str, home: Path) -> Path:
    import engine.builtin as builtin

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORATUI_HOME", str(home))
        return builtin.path(name)


@pytest.fixture(scope="session")
def tiny_sd(builtin_home) -> Path:
    return _builtin("builtin:tiny-sd", builtin_home)


@pytest.fixture(scope="session")
def tiny_sdxl(builtin_home) -> Path:
    return _builtin("builtin:tiny-sdxl", builtin_home)


@pytest.fixture(scope="session")
def loras(tmp_path_factory, builtin_home, tiny_sd, tiny_sdxl) -> dict[str, Path]:
    """name -> path: sd/sdxl diffusers files, kohya versions of both (SDXL also with SGM block names),
    and a PEFT folder for tiny-llama. Tests must not modify these; copy them first."""
    root = tmp_path_factory.mktemp("loras")
    sd = sd_diffusers(tiny_sd, root / "sd")
    sdxl = sdxl_diffusers(tiny_sdxl, root / "sdxl")
    return {
        "sd": sd,
        "sdxl": sdxl,
        "kohya": to_kohya(sd, root / "paper-cut.safetensors", alpha=2.0, metadata=KOHYA_METADATA),
        "kohya_sdxl": to_kohya(sdxl, root / "xl-kohya.safetensors", alpha=4.0, sdxl=True),
        "kohya_sgm": to_kohya(sdxl, root / "xl-sgm.safetensors", alpha=4.0, sdxl=True, sgm=True),
        "peft": llm_peft(_builtin("builtin:tiny-llama", builtin_home), root / "llama-peft"),
    }


@pytest.fixture
def lora_copy(tmp_path, loras):
    """A private copy of one of the session's LoRAs, safe to move, link or delete."""

    def copy(name: str) -> Path:
        source = loras[name]
        target = tmp_path / "copies" / name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
        return target

    return copy


@pytest.fixture
def db():
    from loratui.db.library import open_db

    database = open_db()
    yield database
    database.conn.close()
