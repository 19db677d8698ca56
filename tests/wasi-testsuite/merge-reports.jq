# Merges the JSON reports of several `wasm-host conformance --partition` runs:
#   jq -s -f tests/wasi-testsuite/merge-reports.jq part-*.json > report.json
# Suites are matched by name; counts add up; tests are sorted by name.
{
  execution: {
    start_timestamp: (map(.execution.start_timestamp) | min),
    finish_timestamp: (map(.execution.finish_timestamp) | max)
  },
  results: [map(.results[]) | group_by(.name)[] | {
    name: .[0].name,
    runtime: .[0].runtime,
    duration_s: (map(.duration_s) | max),
    failed: (map(.failed) | add),
    skipped: (map(.skipped) | add),
    passed: (map(.passed) | add),
    xfailed: (map(.xfailed) | add),
    xpassed: (map(.xpassed) | add),
    tests: (map(.tests[]) | sort_by(.name))
  }]
}
