package nsenter

// Entry is the program's entry point (see the package comment).
func Entry()
