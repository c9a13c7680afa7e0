"""The bad-input corpus (issue 7): hostile inputs, each with the answer the platform must give.

Every case is a named entry of a table; the test ids are the names. What each kind must do:

* ``http_cases.HTTP_CASES``, scoring requests against a real server on loopback
  (``test_bad_input_corpus_http.py``): a JSON error with the right 4xx status naming the field,
  column or row, counted in /metrics as that status and never as a server error; the registry
  untouched; the next good request still scored. A few inputs (unknown categories, odd text)
  are scored by design; their cases expect 200 and probabilities.
* ``file_cases.FILE_CASES`` and ``file_cases.CHECK_CASES``, daily deliveries (the data layer's
  cases of ``bad_deliveries`` plus the ones added here) through the data stage
  (``test_bad_input.py``): the raw_data step fails with a SourceError, or a blocking check fails,
  naming the file, column and rows; nothing materialises; the day's last good version stays.
* ``cli_cases.CLI_CASES``, ``mlplatform`` commands (``test_bad_input_corpus_cli.py``): a
  one-line message, a nonzero exit and no traceback; the registry untouched.
"""

from __future__ import annotations


def corpus_names() -> dict[str, list[str]]:
    """The names of every case, by kind."""
    from mlplatform_tests.bad_inputs.cli_cases import CLI_CASES, CONFIG_CASES
    from mlplatform_tests.bad_inputs.file_cases import CHECK_CASES, FILE_CASES
    from mlplatform_tests.bad_inputs.http_cases import HTTP_CASES

    return {
        "http": list(HTTP_CASES),
        "file": [*FILE_CASES, *CHECK_CASES],
        "cli": [*CLI_CASES, *CONFIG_CASES],
    }
