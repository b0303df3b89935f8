"""The billing portal: pages for billing users and a JSON API under /api, served by the daemon.

Entry point: `coobill.web.app.create_app(ctx)`. Routes only call service functions; every
error they raise carries its HTTP status (`coobill.errors`), answered by `coobill.web.failures`.
"""
