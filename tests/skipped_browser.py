"""A pytest plugin: browser tests that were skipped (no Chromium) are named in a loud banner at
the end of the run, so that they cannot vanish silently in CI."""


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "chromium" in str(r.longrepr).lower()]
    if not skipped:
        return
    terminalreporter.write_sep("!", f"{len(skipped)} BROWSER TEST(S) DID NOT RUN: Chromium is not installed", red=True, bold=True)
    for report in skipped:
        terminalreporter.write_line(f"  not run: {report.nodeid}", red=True)
    terminalreporter.write_line("  install Debian's chromium (.ci/run does) and run them again", red=True)
