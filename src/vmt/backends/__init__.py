"""The only code that touches the outside world, each backend behind a Protocol."""
