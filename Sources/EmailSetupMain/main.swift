// The `emailsetup` executable. Everything it runs lives in the EmailSetupFCGI
// library (Sources/EmailSetupFCGI), so tests and the fuzz harnesses in Fuzz/ can
// link the same code; see Package.swift.
import EmailSetupFCGI

EmailSetupCommand.main()
