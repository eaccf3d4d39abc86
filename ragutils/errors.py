"""Errors a learner can fix: the CLI prints them as one line and exits non-zero."""


class CourseError(Exception):
    """A problem with the input or the set-up, explained in one line."""

    def _render_traceback_(self) -> list[str]:
        """In Jupyter, show the one-line explanation instead of a long traceback."""
        return [f"CourseError: {self}"]
