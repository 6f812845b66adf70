// How the delivery figures of the paced scenarios (fanout,
// writes-to-events) are computed from the workers' reports: the window
// the rate is counted over, and the server's CPU per operation.

package bench

import (
	"math"
	"time"
)

// deliveryWindow is the window deliveries are counted over: from the first
// publish (start) until the last delivery arrived (lastDelivery, Unix ns;
// 0 if none did), i.e. publishing plus draining. It is never shorter than
// the publish window, so deliveries that keep up with the publishes count
// at the demanded rate, not above it.
func deliveryWindow(start time.Time, lastDelivery int64, publish time.Duration) time.Duration {
	w := publish
	if lastDelivery > 0 {
		w = max(w, time.Unix(0, lastDelivery).Sub(start))
	}
	return w
}

// addDeliveries fills res's delivery figures from the workers' final
// reports: connected subscribers each expected every one of pub's
// successful publishes, which started at start. It returns the
// connections the workers saw dropped.
func (res *Result) addDeliveries(reports []WorkerReport, connected int, start time.Time, pub publishStats) (dropped int) {
	if len(reports) == 0 {
		return 0 // nobody subscribed
	}
	var lat Histogram
	var last int64
	for _, r := range reports {
		res.Deliveries += r.Deliveries
		lat.Merge(r.Latency)
		dropped += r.Dropped
		last = max(last, r.LastDelivery)
	}
	window := deliveryWindow(start, last, pub.window).Seconds()
	res.ExpectedDeliveries = pub.ok * uint64(connected)
	res.DeliveryWindowS = round3(window)
	res.DeliveriesPerSec = perSec(res.Deliveries, window)
	res.DeliveriesPerSecPublishWindow = perSec(res.Deliveries, pub.window.Seconds())
	res.Missing = int64(res.ExpectedDeliveries) - int64(res.Deliveries)
	res.Latency = ptr(lat.Summary())
	return dropped
}

// cpuPerOpUS is the server's CPU time per operation in microseconds
// (cpuSeconds over n operations), 0 without operations.
func cpuPerOpUS(cpuSeconds float64, n uint64) float64 {
	if n == 0 || cpuSeconds <= 0 {
		return 0
	}
	return math.Round(cpuSeconds*1e6/float64(n)*100) / 100
}
