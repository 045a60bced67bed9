"""Jinja2 templates of notify's e-mails (data; rendered by services.notify.domain.render)."""
