"""`accelerate launch` gets its defaults passed explicitly when the user has no accelerate config (so it does
not warn about them), and a config file's values stand when there is one."""

import subprocess
from types import SimpleNamespace

from engine.spec import parse_spec
from loratui.runs.launch import accelerate_command

DEFAULTS_WARNING = "were not passed to `accelerate launch` and had defaults used instead"


def _plan(tmp_path, **launch):
    spec = parse_spec({"name": "x", "model": {"pretrained": "builtin:tiny-sd"}, "data": {"source": "builtin:shapes"},
                       "train": {"max_steps": 1, "mixed_precision": "no"}, "launch": launch})
    return SimpleNamespace(spec=spec, run=SimpleNamespace(path=tmp_path / "run"), resume=None)


def _flags(cmd: list[str]) -> dict[str, str]:
    launch = cmd[: cmd.index("-m", 3)]
    return {flag: value for flag, value in zip(launch, [*launch[1:], ""], strict=True) if flag.startswith("--")}


def test_without_a_config_accelerate_gets_its_defaults_and_does_not_warn(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cmd = accelerate_command(_plan(tmp_path))
    assert _flags(cmd) == {"--num_processes": "1", "--num_machines": "1", "--dynamo_backend": "no",
                           "--mixed_precision": "no"}
    script = tmp_path / "hello.py"
    script.write_text("print('hello from the worker')\n")
    out = subprocess.run([*cmd[: cmd.index("-m", 3)], str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "hello from the worker" in out.stdout and DEFAULTS_WARNING not in out.stderr + out.stdout


def test_a_config_file_keeps_its_values_unless_the_spec_sets_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    default = tmp_path / "hf" / "accelerate" / "default_config.yaml"
    default.parent.mkdir(parents=True)
    default.write_text("compute_environment: LOCAL_MACHINE\nnum_processes: 1\n")
    assert _flags(accelerate_command(_plan(tmp_path))) == {"--mixed_precision": "no"}
    assert _flags(accelerate_command(_plan(tmp_path, num_processes=2)))["--num_processes"] == "2"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    named = _flags(accelerate_command(_plan(tmp_path, config_file=str(default))))
    assert named == {"--config_file": str(default), "--mixed_precision": "no"}


def test_several_processes_are_data_parallel_and_machines_get_their_rank(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    two = _flags(accelerate_command(_plan(tmp_path, num_processes=2)))
    assert "--multi_gpu" in two and int(two["--main_process_port"]) > 0  # never one process in silence
    machines = _plan(tmp_path, num_processes=4, num_machines=2, main_process_ip="10.0.0.1", main_process_port=29555)
    main, other = _flags(accelerate_command(machines)), _flags(accelerate_command(machines, machine_rank=1))
    assert {k: main[k] for k in ("--num_processes", "--num_machines", "--machine_rank", "--main_process_ip",
                                 "--main_process_port")} == {"--num_processes": "4", "--num_machines": "2",
                                                             "--machine_rank": "0", "--main_process_ip": "10.0.0.1",
                                                             "--main_process_port": "29555"}
    assert other["--machine_rank"] == "1" and "--multi_gpu" in other
    fsdp = _flags(accelerate_command(_plan(tmp_path, num_processes=2, distributed="fsdp")))
    assert fsdp["--fsdp_version"] == "2" and "--use_fsdp" in fsdp and "--multi_gpu" not in fsdp


def test_machines_an_accelerate_config_sets_up_get_only_the_rank_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    default = tmp_path / "hf" / "accelerate" / "default_config.yaml"
    default.parent.mkdir(parents=True)
    default.write_text("distributed_type: MULTI_GPU\nnum_machines: 2\nmachine_rank: 0\nmain_process_ip: 10.0.0.1\n"
                       "main_process_port: 29500\nnum_processes: 2\n")
    plan = _plan(tmp_path)
    assert _flags(accelerate_command(plan)) == {"--mixed_precision": "no"}  # the main machine: the config's own
    assert _flags(accelerate_command(plan, machine_rank=1)) == {"--machine_rank": "1", "--mixed_precision": "no"}
