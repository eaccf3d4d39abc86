"""ragutils.tools.prepare: the one-time jobs before the notebooks, chosen by name, reported, continued on failure."""

import io

import pytest

from ragutils.errors import CourseError
from ragutils.tools import cli, prepare


def test_every_job_is_chosen_by_name_in_its_order():
    assert [job.name for job in prepare.chosen_jobs()] == [job.name for job in prepare.JOBS]
    assert [job.name for job in prepare.chosen_jobs("sentences,wiki")] == ["wiki", "sentences"]
    with pytest.raises(CourseError, match="no prepare job named 'wikis'; choose from: encoder, generator, wiki"):
        prepare.chosen_jobs("wiki,wikis")


def test_each_job_reports_what_it_makes_and_its_time():
    done = []
    jobs = [prepare.Job("first", "one thing", lambda: done.append(1)),
            prepare.Job("second", "another", lambda: done.append(2))]
    out = io.StringIO()
    seconds = prepare.prepare(jobs, out)
    lines = out.getvalue().splitlines()
    assert done == [1, 2] and list(seconds) == ["first", "second"]
    assert lines[0] == "[1/2] first: one thing ..." and lines[1].startswith("[1/2] first: done in ")
    assert lines[-1].startswith("prepared 2 job(s) in ")


def test_a_failing_job_names_itself_and_the_command_that_continues():
    done = []

    def broken():
        raise OSError("disk full")

    jobs = [prepare.Job("first", "a", lambda: done.append(1)), prepare.Job("second", "b", broken),
            prepare.Job("third", "c", lambda: done.append(3))]
    with pytest.raises(CourseError, match=r"prepare job 'second' failed \(OSError: disk full\); "
                                          r"to continue: ragutils prepare --only second,third"):
        prepare.prepare(jobs, io.StringIO())
    assert done == [1]  # the first job's work stands; the third never started


def test_the_command_line_rejects_an_unknown_job(capsys):
    assert cli.main(["prepare", "--only", "nothing"]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no prepare job named 'nothing'" in error[0]


def test_the_encoder_job_really_loads_the_encoder():
    seconds = prepare.prepare(prepare.chosen_jobs("encoder"), io.StringIO())
    assert list(seconds) == ["encoder"]
