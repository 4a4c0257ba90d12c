#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The settings as one consistent read of `information`.
public struct StoredSettings: Sendable, Equatable {
    /// Every label present in `information` with its value, except
    /// `smtp_settings_version` (that is ``version``). `smtp_password` is the sealed
    /// value as stored.
    public var values: [String: String]
    /// `smtp_settings_version`, 0 when the row is absent (never saved).
    public var version: Int

    /// Makes a value; see the properties.
    public init(values: [String: String], version: Int) {
        self.values = values
        self.version = version
    }
}

/// One saved version of the settings, from `settings_history`.
public struct SettingsHistoryEntry: Sendable, Equatable {
    /// The version this save produced.
    public var version: Int
    /// When it was saved (database clock, UTC).
    public var savedAt: Date
    /// The authenticated user who saved it (`REMOTE_USER`, or the CLI's actor name).
    public var savedBy: String
    /// The client address, when known.
    public var remoteAddress: String?
    /// Labels whose value differed from the version before, sorted.
    public var changedFields: [String]
    /// Every settings label (`from_address`, `smtp_*`) after the save; `smtp_password`
    /// sealed as stored.
    public var values: [String: String]
    /// For a restore: the version whose values were made current again.
    public var restoredFrom: Int?
    /// When this version's sealed password was removed from history (the password
    /// was cleared later); `values["smtp_password"]` is `""` since. Nil when the
    /// version had no password or still holds it.
    public var passwordPurgedAt: Date? = nil
}

/// The answer of ``SettingsStore/restore(version:expectedVersion:actor:remoteAddress:)``.
public struct SettingsRestore: Sendable, Equatable {
    /// The new version the restore saved.
    public var version: Int
    /// What happened to the password.
    public var password: PasswordRestore

    /// Makes a value; see the properties.
    public init(version: Int, password: PasswordRestore) {
        self.version = version
        self.password = password
    }
}

/// What a restore did with the password. A password that was cleared never comes
/// back through a restore: clearing removed every sealed copy from history.
public enum PasswordRestore: Sendable, Equatable {
    /// The version's password state is current again: its sealed password, or no
    /// password when it had none and none is set now.
    case restored
    /// The version's password was removed from history when the password was
    /// cleared (or the password is cleared now): the current password state is kept.
    case keptCurrent
    /// The version had no password while one is set: the password is now cleared,
    /// and, as with any clearing, every sealed copy in history is removed.
    case cleared
}

/// One row of `audit_log`.
public struct AuditEntry: Sendable, Equatable {
    /// Increasing id.
    public var id: Int64
    /// When (database clock, UTC).
    public var at: Date
    /// Who.
    public var actor: String
    /// From where, when known.
    public var remoteAddress: String?
    /// What, e.g. `settings.save`, `settings.restore`, `test.send`, `secrets.rewrite`.
    public var action: String
    /// How it ended, e.g. `success`, `failure`, `conflict`, `rate_limited`.
    public var outcome: String
    /// Caller-chosen JSON or text; never a secret.
    public var detail: String?
    /// The settings version the action concerned, if any.
    public var settingsVersion: Int?
    /// How many events this row stands for: 1, or for an aggregated refusal (see
    /// ``SettingsStore/appendAggregatedAudit(action:outcome:actor:remoteAddress:detail:settingsVersion:)``)
    /// how many came in its minute.
    public var count: Int = 1
    /// For an aggregated row, when the latest of its events came (``at`` is the first).
    public var lastAt: Date? = nil
}

/// The answer of ``SettingsStore/recordAndCount(bucket:window:limit:)``.
public enum RateDecision: Sendable, Equatable {
    /// The event was recorded; `remaining` more are allowed in the current window.
    case allowed(remaining: Int)
    /// The bucket is full; the event was not recorded. Try again after this many
    /// seconds (when the oldest counted event leaves the window).
    case limited(retryAfter: TimeInterval)

    /// True for `.allowed`.
    public var isAllowed: Bool { if case .allowed = self { return true } else { return false } }
}
