"""Chapter 7's table: every chapter's result judged from the shipped records."""

from vsml_lite import reproduction


def test_every_chapter_is_judged_from_its_record():
    rows = reproduction.reproduction_rows()
    assert [r["chapter"] for r in rows][:3] == ["1", "2", "3"]
    assert {r["chapter"] for r in rows} == {"1", "2", "3", "4", "5", "6"}
    assert all(r["verdict"] in reproduction.VERDICTS and r["scale"] for r in rows)
    assert [r["verdict"] for r in rows[:2]] == [reproduction.EXACT] * 2
    # Chapter 4's shipped clone is short of the paper's accuracies (the chapter says so too).
    chapter4 = [r for r in rows if r["chapter"] == "4"]
    assert len(chapter4) == 4 and all("points short" in r["this book"] for r in chapter4
                                      if r["verdict"] == reproduction.FAILS)
    n = reproduction.counts(rows)
    assert sum(n.values()) == len(rows)


def test_a_finished_paper_scale_forward_clone_gets_its_own_row():
    from vsml_lite import cloning
    from vsml_lite.artifacts import SHIPPED, artifact_exists, pretrained_path

    rows = [r for r in reproduction.reproduction_rows() if r["chapter"] == "3"]
    paper = [r for r in rows if r["scale"].startswith("preset paper:")]
    assert len(paper) == int(artifact_exists(pretrained_path(cloning.KIND, "paper")))
    assert rows[0]["scale"].startswith(f"preset {SHIPPED[cloning.KIND]}:")
