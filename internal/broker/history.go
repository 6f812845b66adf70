package broker

// CheckSince applies the History contract shared by every Broker: given the
// reader's position since, the channel's current position top and the
// offset of the oldest retained message (0: none retained), it reports
// whether the history can serve every message after since without a gap.
//
// The empty position (Epoch "" and Offset 0) always passes: it reads from
// the oldest retained message. Otherwise it returns ErrGone when
// since.Epoch is not top.Epoch, when since.Offset is negative or beyond
// top.Offset (a cursor from the future cannot be trusted), or when
// since.Offset < top.Offset and the history no longer holds
// since.Offset+1. It returns nil otherwise.
func CheckSince(since, top Position, oldest int64) error {
	if since == (Position{}) {
		return nil
	}
	if since.Epoch != top.Epoch || since.Offset < 0 || since.Offset > top.Offset {
		return ErrGone
	}
	if since.Offset < top.Offset && (oldest <= 0 || since.Offset+1 < oldest) {
		return ErrGone
	}
	return nil
}
