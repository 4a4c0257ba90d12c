import Smtp

/// Loads the saved SMTP settings from the database for `send --stored` and
/// `check --stored`. Filled in when the responder's configuration and storage land.
enum StoredSettings {
    struct Unavailable: Error, CustomStringConvertible {
        var description: String { "--stored is not available yet: the responder configuration has not landed" }
    }
}
