"""Drop-in replacements for the quota libraries services use today.

``delimiter.compat.oslo_limit``: oslo.limit 2.12's ``Enforcer``.
"""
