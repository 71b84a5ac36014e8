"""The command line: thin wrappers, one-line errors, no torch for commands that need no model."""

import subprocess
import sys

from click.testing import CliRunner

from hbens.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_check_ok_and_invalid(tmp_path, example):
    _, csvs = example
    result = run("check", csvs[0])
    assert result.exit_code == 0 and "OK: 58 valid rows, 2 images, 29 classes" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(csvs[0].read_text().replace(",finger-3,", ",finger-33,", 1))
    result = run("check", bad)
    assert result.exit_code == 1
    assert "unknown class 'finger-33'" in result.output and "INVALID" in result.output


def test_image_size_sets_the_frame_of_csv_commands(tmp_path):
    # 0-based pixels 254..256: one run of 3 on a 2048-wide frame; two pieces on a 256-wide one (it wraps a row).
    sub = tmp_path / "sub.csv"
    sub.write_text("image_name,class,rle\na.png,Ulna,255 3\nb.png,Ulna,65536 1\n")
    for size, kept in [("2048", "255 3"), ("256", "255 2")]:
        out = tmp_path / f"clean{size}.csv"
        assert run("clean", sub, "--largest", "-o", out, "--image-size", size, "--quiet").exit_code == 0
        assert out.read_text().splitlines()[1] == f"a.png,Ulna,{kept}"
    outside = tmp_path / "outside.csv"
    outside.write_text(sub.read_text().replace("65536 1", "65537 1"))
    assert ": 2 valid rows" in run("check", outside).output  # (both images lack 28 classes)
    result = run("check", outside, "--image-size", "256x256")
    assert ": 1 valid rows" in result.output and "ends past the last pixel 65536" in result.output
    result = run("check", sub, "--image-size", "256x0")
    assert result.exit_code == 2 and "must be 1 to 16384 pixels" in result.output
    fused, again = tmp_path / "fused.csv", tmp_path / "again.csv"
    again.write_bytes(sub.read_bytes())
    assert run("fuse", sub, again, "-o", fused, "--missing", "empty", "--largest", "--image-size", "256",
               "--quiet").exit_code == 0
    assert "a.png,Ulna,255 2" in fused.read_text().splitlines()


def test_score_says_when_every_dice_is_zero_that_the_size_may_be_wrong(tmp_path):
    from hbens.synthetic import write_example

    gt, csvs = write_example(tmp_path, n_images=1, n_models=1, shape=(256, 256))
    wrong = CliRunner().invoke(cli, ["score", str(csvs[0]), "--gt", str(gt)])
    assert wrong.exit_code == 0 and wrong.stdout.splitlines()[-1].startswith("mean         0.0000")
    assert "pass --image-size" in wrong.stderr
    right = CliRunner().invoke(cli, ["score", str(csvs[0]), "--gt", str(gt), "--image-size", "256"])
    assert float(right.stdout.split()[-3]) > 0.5 and "--image-size" not in right.stderr


def test_score_writes_table_csv_and_plot(tmp_path, example):
    gt, csvs = example
    result = run("score", csvs[0], "--gt", gt, "--out", tmp_path / "s.csv", "--plot", tmp_path / "d.png")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("mean ")
    assert (tmp_path / "s.csv").read_text().startswith("class,dice\nfinger-1,")
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_is_one_line_without_traceback(tmp_path, example):
    gt, _ = example
    bad = tmp_path / "bad.csv"
    bad.write_text("image_name,class,rle\na.png,Ulna,1 2 3\n")
    result = run("score", bad, "--gt", gt)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {bad}:2: a.png Ulna: RLE has an odd number of tokens (3); "
                                                   "expected 'start length' pairs"]
    assert "Traceback" not in result.output


def test_a_closed_pipe_on_stdout_ends_quietly_after_the_side_files(tmp_path, example):
    gt, csvs = example
    process = subprocess.Popen([sys.executable, "-c", "from hbens.cli import main; main()", "score", str(csvs[0]),
                                "--gt", str(gt), "--out", str(tmp_path / "s.csv")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # as `| head` does once it has its lines; here before the first one
    stderr = process.stderr.read().decode()
    assert process.wait() == 1 and stderr == ""
    assert (tmp_path / "s.csv").read_text().startswith("class,dice\n")


def test_commands_without_models_do_not_import_torch(tmp_path, example):
    gt, csvs = example
    commands = [
        ["check", csvs[0]],
        ["score", csvs[0], "--gt", gt],
        ["fuse", *csvs, "-o", tmp_path / "f.csv", "--quiet", "--largest"],
        ["clean", csvs[0], "--fill-holes", "-o", tmp_path / "c.csv", "--quiet"],
    ]
    for command in commands:
        code = (
            "import sys; from hbens.cli import main; sys.argv = ['hbens'] + %r\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'" % [str(a) for a in command]
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, (command, result.stderr)


def test_side_outputs_never_overwrite_inputs(tmp_path, example):
    gt, csvs = example
    before = csvs[0].read_bytes()
    for args in (["score", csvs[0], "--gt", gt, "--out", csvs[0]],
                 ["score", csvs[0], "--gt", gt, "--plot", csvs[0]],
                 ["clean", csvs[0], "--largest", "-o", tmp_path / "c.csv", "--report", csvs[0]],
                 ["fuse", csvs[0], csvs[1], "-o", tmp_path / "f.csv", "--largest", "--report", csvs[1], "--quiet"],
                 ["show", csvs[0], "-o", csvs[0]]):
        result = run(*args)
        assert result.exit_code == 1 and "is also the input" in result.output, (args, result.output)
    assert csvs[0].read_bytes() == before
    assert not (tmp_path / "c.csv").exists() and not (tmp_path / "f.csv").exists()


def test_every_option_of_every_command_has_help():
    import click

    missing = [(name, p.opts[0]) for name, command in cli.commands.items() for p in command.params
               if isinstance(p, click.Option) and not p.help]
    assert not missing
