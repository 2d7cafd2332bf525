"""The proving ground: stack, fake provider, observer, checker, criteria and the drill CLI."""
