package state

import (
	"github.com/satchel-net/satchel/chain"
)

func (x *execCtx) addWorker(m chain.MsgAddWorker) error {
	if _, err := x.requireLead(m.Group); err != nil {
		return err
	}
	id, err := x.s.nextID(seqWorker + string(m.Group))
	if err != nil {
		return err
	}
	w := workerRecord{Worker: chain.Worker{Group: m.Group, ID: chain.WorkerID(id), Account: m.Account}}
	if err := x.putWorker(w); err != nil {
		return err
	}
	x.emit(chain.WorkerAdded{Group: m.Group, Worker: w.ID, Account: w.Account})
	return nil
}

func (x *execCtx) removeWorker(m chain.MsgRemoveWorker) error {
	if _, err := x.requireLead(m.Group); err != nil {
		return err
	}
	w, err := x.worker(m.Group, m.Worker)
	if err != nil {
		return err
	}
	if w.StorageBucket != nil {
		return chain.Errorf(chain.ErrWorkerBusy, "storage worker %d operates or is invited to storage bucket %d; remove the operator or cancel the invitation first", w.ID, *w.StorageBucket)
	}
	if w.DistributionBuckets > 0 {
		return chain.Errorf(chain.ErrWorkerBusy, "distribution worker %d operates or is invited to %d distribution buckets; remove it from them first", w.ID, w.DistributionBuckets)
	}
	x.s.c.del(workerKey(m.Group, m.Worker))
	x.emit(chain.WorkerRemoved{Group: m.Group, Worker: m.Worker})
	return nil
}

// createMember registers the signer as a member (open registration) and
// always creates the member's dynamic bag, placed by the Member policy
// (zero buckets by default), so every member has a bag to own its assets.
// At most Limits.OpenMembers members per block (countMember).
func (x *execCtx) createMember(m chain.MsgCreateMember) error {
	if err := x.countMember(false); err != nil {
		return err
	}
	return x.registerMember(chain.Member{Controller: x.signer, Handle: m.Handle})
}

// registerMember gives mem the next member ID and the initial invitations,
// stores it and creates its bag.
func (x *execCtx) registerMember(mem chain.Member) error {
	p, err := x.loadParams()
	if err != nil {
		return err
	}
	id, err := x.s.nextID(seqMember)
	if err != nil {
		return err
	}
	mem.ID, mem.Invites = chain.MemberID(id), p.Limits.InitialInvites
	if err := x.s.setJSON(memberKey(mem.ID), mem); err != nil {
		return err
	}
	x.emit(chain.MemberCreated{Member: mem.ID, Controller: mem.Controller, Handle: mem.Handle, InvitedBy: mem.InvitedBy, InvitedByLead: mem.InvitedByLead})
	return x.createDynamicBag(chain.MemberBag(mem.ID), chain.MemberBagType, mem.Controller)
}

// createChannel creates a channel of a member, signed by its controller,
// and the channel's dynamic bag placed by the Channel policy.
func (x *execCtx) createChannel(m chain.MsgCreateChannel) error {
	mem, err := x.member(m.Member)
	if err != nil {
		return err
	}
	if x.signer != mem.Controller {
		return chain.Errorf(chain.ErrUnauthorized, "only member %d's controller account %s may create its channels; account %s is not it", mem.ID, mem.Controller, x.signer)
	}
	id, err := x.s.nextID(seqChannel)
	if err != nil {
		return err
	}
	ch := chain.Channel{ID: chain.ChannelID(id), Member: mem.ID, Owner: mem.Controller, Title: m.Title, Bag: chain.ChannelBag(chain.ChannelID(id))}
	if err := x.s.setJSON(channelKey(ch.ID), ch); err != nil {
		return err
	}
	x.emit(chain.ChannelCreated{Channel: ch.ID, Member: ch.Member, Owner: ch.Owner, Bag: ch.Bag})
	return x.createDynamicBag(ch.Bag, chain.ChannelBagType, ch.Owner)
}

// deleteChannel deletes an empty channel bag and the channel, signed by
// the channel's owner.
func (x *execCtx) deleteChannel(m chain.MsgDeleteChannel) error {
	var ch chain.Channel
	ok, err := x.s.getJSON(channelKey(m.Channel), &ch)
	if err != nil {
		return err
	}
	if !ok {
		return chain.Errorf(chain.ErrChannelNotFound, "channel %d does not exist", m.Channel)
	}
	if x.signer != ch.Owner {
		return chain.Errorf(chain.ErrUnauthorized, "only channel %d's owner %s may delete it; account %s is not the owner", ch.ID, ch.Owner, x.signer)
	}
	bag, err := x.bag(ch.Bag)
	if err != nil {
		return err
	}
	if bag.ObjectsCount > 0 {
		return chain.Errorf(chain.ErrBagHasObjects, "channel %d's bag %s still holds %d data objects; delete them first", ch.ID, bag.ID, bag.ObjectsCount)
	}
	for _, id := range bag.StorageBuckets {
		b, err := x.storageBucket(id)
		if err != nil {
			return err
		}
		if b.BagsCount, err = checkedSub(b.BagsCount, 1, "bags count"); err != nil {
			return err
		}
		if err := x.putStorageBucket(b); err != nil {
			return err
		}
		x.s.c.del(sBucketBagKey(id, bag.ID))
	}
	for _, id := range bag.DistributionBuckets {
		if err := x.unlinkDistributionBag(id, bag.ID); err != nil {
			return err
		}
	}
	x.s.c.del(bagKey(bag.ID))
	x.s.c.del(channelKey(ch.ID))
	x.emit(chain.ChannelDeleted{Channel: ch.ID, Bag: bag.ID})
	x.emit(chain.BagDeleted{Bag: bag.ID, StorageBuckets: bag.StorageBuckets, DistributionBuckets: bag.DistributionBuckets})
	return nil
}
