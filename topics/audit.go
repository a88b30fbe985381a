package topics

// PrefixAudit is the prefix of an audit result publication: auditors
// publish signed results of /satchel/audit/1.0.0 on the one topic made of
// this byte alone, AuditTopic. (The contracts branch reserves 0x0a for audit
// results in the prefix table; this constant is that reservation's value.)
const PrefixAudit Prefix = 0x0a

// AuditTopic is the gossipsub topic audit results are published on: the
// hex of PrefixAudit, "0a".
const AuditTopic = "0a"
