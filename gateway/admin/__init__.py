"""Admin changes: every change of who may do what, committed together with its audit entry."""
