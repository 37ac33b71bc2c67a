"""The review console's entry: presses and commands from the console, its timeline and proposals."""
