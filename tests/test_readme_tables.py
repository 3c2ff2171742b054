"""`scripts/readme_tables.py`, the README's demo tables from a report folder: loaded from its file (scripts/ is not
a package), checked on a report the tests made and on drift points built by hand."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "scripts" / "readme_tables.py"


def readme_tables():
    spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_readme_tables(report: Path, capsys) -> None:
    """Every section's table with one row per variant, the sweep's row per video model, the Still-Moving minus
    naive injection rows with their verdicts, and the count of claims.json's verdicts."""
    capsys.readouterr()
    readme_tables().main(report)
    out = capsys.readouterr().out
    metrics = json.loads((report / "metrics.json").read_text())["sections"]
    record = json.loads((report / "claims.json").read_text())
    lines = out.splitlines()
    for name, variants in metrics.items():
        if name.startswith("motion scale"):
            continue
        head = lines.index(f"| {name} | speed | static share | fidelity | consistency | artifact |")
        table = lines[head + 2 : head + 2 + len(variants)]
        assert [row.split(" | ")[0].removeprefix("| ") for row in table] == list(variants)
        assert lines[head + 2 + len(variants)] == ""
    assert sum(line.startswith("| AnimateDiff-like V: displacement") for line in lines) == 1
    assert sum(line.startswith("| jointly trained V: displacement") for line in lines) == 1
    verdicts = lines[lines.index("| section | fidelity | consistency | artifact | verdict: better / no worse |") :]
    for section, claims in record["claims"].items():
        if {"better_than_naive", "no_worse_than_naive"} <= set(claims):  # the drift study's have one each
            row = next(line for line in verdicts if line.startswith(f"| {section} | "))
            expected = {"holds": "yes", "does not hold": "no", "cannot be judged": "undecided"}
            assert row.endswith(f" / {expected[claims['no_worse_than_naive']['verdict']]} |")
    every = [c["verdict"] for section in record["claims"].values() for c in section.values()]
    assert f"'holds': {every.count('holds')}" in lines[-1] and lines[-1].startswith("verdicts: ")


def test_the_drift_table_has_a_row_per_weight_bold_where_still_moving_is_decidedly_better(capsys):
    interval = lambda estimate, low, high: {"estimate": estimate, "low": low, "high": high, "n": 32}  # noqa: E731
    point = {
        "target": "crayon",
        "lora_weight": 2.0,
        "setting": "LoRA weight 2",
        "drift": 0.1239,
        "naive_injection_mean": {"consistency": 0.487, "artifact": 0.211},
        "still_moving_minus_naive": {
            "fidelity": interval(0.07, 0.006, 0.138),
            "consistency": interval(0.003, -0.023, 0.028),
            "artifact": interval(-0.046, -0.07, -0.024),
            "speed": interval(-0.2, -0.3, -0.1),  # decided, but speed has no better side: never bold
        },
    }
    readme_tables().drift_table([point])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(
        "| customization, setting (drift) | naive injection: consistency / artifact | fidelity |"
    )
    assert lines[2] == (
        "| crayon, LoRA weight 2 (0.124) | 0.487 / 0.211 | **+0.070 [+0.006, +0.138]** | +0.003 [-0.023, +0.028] | "
        "**-0.046 [-0.070, -0.024]** | -0.200 [-0.300, -0.100] |"
    )
    subject = {**point, "target": "star", "lora_weight": None, "dreambooth_lr": 5e-4, "drift": 0.28}
    subject["setting"] = "DreamBooth lr 0.0005"
    recorded = {**point["still_moving_minus_naive"], "consistency": interval(0.013, 0.002, 0.025)}
    readme_tables().drift_table([subject, {**subject, "recorded_blocks_minus_naive": recorded}])
    rows = capsys.readouterr().out.strip().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [
        "| star, DreamBooth lr 0.0005 (0.280)",
        "| star, DreamBooth lr 0.0005 (0.280)",
        "| star, DreamBooth lr 0.0005 (0.280): customize's blocks",
    ]
    assert "**+0.013 [+0.002, +0.025]**" in rows[2] and "**+0.013" not in rows[1]
    readme_tables().drift_table([])  # no drift study: no table
    assert capsys.readouterr().out == ""


def test_a_folder_without_a_report_is_one_error_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
