"""The approver's inbox as a web app: its pages, forms, sessions, templates and static files."""
