package chain

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
)

// Validators. The data directory runs on a CometBFT validator set; the set
// is state like the rest and changes by governance: the storage lead adds a
// validator, changes its power or removes it with MsgSetValidator, and the
// change takes effect (CometBFT's rule) two blocks after the block that
// made it. The genesis validators are those of the network's genesis file.

// MaxValidators bounds the validator set.
const MaxValidators = 100

// MaxValidatorPower bounds one validator's voting power.
const MaxValidatorPower = 1_000_000

// Validator is a member of the validator set: an ed25519 consensus key
// (CometBFT's priv_validator_key.json) and its voting power.
type Validator struct {
	PubKey ValidatorKey `json:"pubKey"`
	Power  int64        `json:"power"`
}

// ValidatorKey is a validator's ed25519 public key, written in hex.
type ValidatorKey []byte

// MarshalText writes the key in hex.
func (k ValidatorKey) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(k)), nil }

// UnmarshalText reads a key in hex.
func (k *ValidatorKey) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*k = nil
		return nil
	}
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("validator key: want hex: %w", err)
	}
	*k = v
	return nil
}

// String is the key in hex.
func (k ValidatorKey) String() string { return hex.EncodeToString(k) }

// Validate checks the key's length.
func (k ValidatorKey) Validate() error {
	if len(k) != ed25519.PublicKeySize {
		return invalid("validator key is %d bytes; want a %d-byte ed25519 public key", len(k), ed25519.PublicKeySize)
	}
	return nil
}

// MsgSetValidator sets a validator's voting power: a new key joins the set,
// a known key changes power, Power 0 removes it. Storage lead only; the set
// must keep at least one validator.
type MsgSetValidator struct {
	PubKey ValidatorKey `json:"pubKey"`
	Power  int64        `json:"power"`
}

// Type implements Msg.
func (MsgSetValidator) Type() string { return "set_validator" }

// ValidateBasic implements Msg.
func (m MsgSetValidator) ValidateBasic() error {
	if err := m.PubKey.Validate(); err != nil {
		return err
	}
	if m.Power < 0 || m.Power > MaxValidatorPower {
		return invalid("validator power %d: want 0 (remove) to %d", m.Power, MaxValidatorPower)
	}
	return nil
}

// ValidatorUpdated: a validator's power was set (0: removed). The node
// hands these to CometBFT as the block's validator updates.
type ValidatorUpdated struct {
	PubKey ValidatorKey `json:"pubKey"`
	Power  int64        `json:"power"`
}

// EventType implements EventPayload.
func (ValidatorUpdated) EventType() string { return "ValidatorUpdated" }

// QueryValidators: no data → []Validator, by key.
const QueryValidators = "/validators"

// Validators returns the validator set as the state records it.
func (c *Client) Validators(ctx context.Context) ([]Validator, error) {
	return query[[]Validator](ctx, c, QueryValidators, nil)
}
