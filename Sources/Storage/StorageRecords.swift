import Foundation

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
