"""The pytest plugin: options, store loading, fixtures, rule marks, reports and comparison."""
