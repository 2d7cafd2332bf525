"""Turn a run directory into HTML, Markdown, JSON and JUnit reports (see render.render_run)."""
