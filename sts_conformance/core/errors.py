"""Errors the harness raises before or around a run (never a failed requirement)."""


class HarnessError(Exception):
    """Something is wrong with the setup, not with the target's behaviour."""


class ProfileError(HarnessError):
    """The target profile is missing, unreadable or has a bad setting."""


class TargetUnavailable(HarnessError):
    """The target could not be launched, did not answer, or refused the admin credential."""
