package state

import (
	"github.com/satchel-net/satchel/chain"
)

// keyValidator + the 32-byte ed25519 key: a validator and its power.
const keyValidator = "s/val/"

func validatorKey(k chain.ValidatorKey) string { return keyValidator + string(k) }

// writeValidators records the genesis validator set.
func writeValidators(s store, vals []chain.Validator) error {
	if len(vals) > chain.MaxValidators {
		return chain.Errorf(chain.ErrInvalid, "genesis has %d validators; at most %d", len(vals), chain.MaxValidators)
	}
	for _, v := range vals {
		if err := (chain.MsgSetValidator{PubKey: v.PubKey, Power: v.Power}).ValidateBasic(); err != nil {
			return err
		}
		if v.Power == 0 {
			return chain.Errorf(chain.ErrInvalid, "genesis validator %s has no power", v.PubKey)
		}
		if err := s.setJSON(validatorKey(v.PubKey), v); err != nil {
			return err
		}
	}
	return nil
}

// setValidator adds, re-weights or removes a validator (storage lead only).
// The set never becomes empty, never exceeds MaxValidators, and removing
// an unknown key fails: CometBFT halts on a validator update it cannot
// apply, so the state refuses it first.
func (x *execCtx) setValidator(m chain.MsgSetValidator) error {
	if _, err := x.requireLead(chain.StorageGroup); err != nil {
		return err
	}
	vals, err := x.s.c.scan(keyValidator)
	if err != nil {
		return err
	}
	_, known, err := x.s.c.get(validatorKey(m.PubKey))
	if err != nil {
		return err
	}
	switch {
	case m.Power == 0 && !known:
		return chain.Errorf(chain.ErrInvalid, "validator %s is not in the set; nothing to remove", m.PubKey)
	case m.Power == 0 && len(vals) == 1:
		return chain.Errorf(chain.ErrInvalid, "validator %s is the last one; add another before removing it", m.PubKey)
	case m.Power > 0 && !known && len(vals) >= chain.MaxValidators:
		return chain.Errorf(chain.ErrInvalid, "the validator set is full (%d); remove one first", chain.MaxValidators)
	}
	if m.Power == 0 {
		x.s.c.del(validatorKey(m.PubKey))
	} else if err := x.s.setJSON(validatorKey(m.PubKey), chain.Validator{PubKey: m.PubKey, Power: m.Power}); err != nil {
		return err
	}
	x.emit(chain.ValidatorUpdated{PubKey: m.PubKey, Power: m.Power})
	return nil
}
