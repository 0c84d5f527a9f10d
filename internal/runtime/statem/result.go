package statem

import (
	"fmt"
	"time"

	"observer/internal/runtime"
)

// Kind says which of gen_statem's event types an event has.
type Kind uint8

// The event kinds; a callback switches on EventType.Kind.
const (
	KindCall           Kind = iota + 1 // {call, From}: a Call; answer it with Reply(et.From, ...)
	KindCast                           // cast: a Cast
	KindInfo                           // info: any other message, including ExitMsg and DownMsg
	KindTimeout                        // timeout: the event timeout expired
	KindStateTimeout                   // state_timeout: the state timeout expired
	KindGenericTimeout                 // {timeout, Name}: the generic timeout et.Name expired
	KindInternal                       // internal: an event the machine inserted with NextEvent
	KindEnter                          // enter: a state enter call; the content is the old state
)

var kindNames = [...]string{"", "call", "cast", "info", "timeout", "state_timeout", "timeout", "internal", "enter"}

// String returns the kind's OTP name.
func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// EventType is gen_statem's event_type(): the Kind, plus the caller to
// answer for a call and the timer's name for a generic timeout.
type EventType struct {
	Kind Kind
	// From is the pending call of a KindCall event.
	From runtime.From
	// Name is the timer of a KindGenericTimeout event.
	Name any
}

// String prints the type the Erlang way: call, cast, {timeout,Name}, ...
func (et EventType) String() string {
	if et.Kind == KindGenericTimeout {
		return fmt.Sprintf("{timeout,%v}", et.Name)
	}
	return et.Kind.String()
}

// isEvent reports whether et may be queued as an event: anything but an
// enter call, and a call only with someone to answer.
func (et EventType) isEvent() bool {
	return et.Kind >= KindCall && et.Kind <= KindInternal && (et.Kind != KindCall || !et.From.IsZero())
}

type resultKind uint8

const (
	resInvalid resultKind = iota // the zero Result
	resOk
	resIgnore
	resNextState
	resKeepState
	resRepeatState
	resStop
)

var resultNames = [...]string{"the zero Result", "Ok", "Ignore", "NextState", "KeepState", "RepeatState", "StopMachine"}

func (k resultKind) String() string { return resultNames[k] }

// Result is what a callback returns: Init returns Ok, Ignore or StopMachine;
// a state callback returns a transition (NextState, KeepState,
// KeepStateAndData, RepeatState, RepeatStateAndData) or a stop
// (StopMachine, StopAndReply).
type Result struct {
	kind     resultKind
	state    any
	data     any
	keepData bool
	reason   any
	actions  []Action
}

// Ok is init's {ok, State, Data, Actions}: the machine starts in state with
// data, and the actions run as for a transition into that state (Postpone
// is ignored, as there is no event to postpone).
func Ok(state, data any, actions ...Action) Result {
	return Result{kind: resOk, state: state, data: data, actions: actions}
}

// Ignore is init's ignore: the start returns ErrIgnore and the process exits normally.
func Ignore() Result { return Result{kind: resIgnore} }

// NextState is {next_state, State, Data, Actions}. It is a state change,
// with its postponed events retried and its state timeout cancelled, when
// state differs (!=) from the current state.
func NextState(state, data any, actions ...Action) Result {
	return Result{kind: resNextState, state: state, data: data, actions: actions}
}

// KeepState is {keep_state, Data, Actions}: stay in the state with new data.
func KeepState(data any, actions ...Action) Result {
	return Result{kind: resKeepState, data: data, actions: actions}
}

// KeepStateAndData is {keep_state_and_data, Actions}: only the actions.
func KeepStateAndData(actions ...Action) Result {
	return Result{kind: resKeepState, keepData: true, actions: actions}
}

// RepeatState is {repeat_state, Data, Actions}: KeepState that runs the
// state enter call again, with the current state as the old one.
func RepeatState(data any, actions ...Action) Result {
	return Result{kind: resRepeatState, data: data, actions: actions}
}

// RepeatStateAndData is {repeat_state_and_data, Actions}.
func RepeatStateAndData(actions ...Action) Result {
	return Result{kind: resRepeatState, keepData: true, actions: actions}
}

// StopMachine is {stop, Reason, Data}: Terminate runs with reason and data,
// then the process exits with reason. From Init it is {stop, Reason} and
// the start fails with a *StartError.
func StopMachine(reason, data any) Result {
	return Result{kind: resStop, reason: reason, data: data}
}

// StopAndReply is {stop_and_reply, Reason, Replies, Data}: the replies
// (Reply actions only) are sent first, then the machine stops as with
// StopMachine.
func StopAndReply(reason, data any, replies ...Action) Result {
	return Result{kind: resStop, reason: reason, data: data, actions: replies}
}

type actionKind uint8

const (
	actInvalid actionKind = iota // the zero Action
	actReply
	actPostpone
	actNextEvent
	actHibernate
	actTimeout
)

type timeoutOp uint8

const (
	opSet timeoutOp = iota
	opUpdate
	opCancel
)

// timerKey identifies a timer: the event timeout, the state timeout, or a
// generic timeout by name. It is also the event type the timer delivers.
type timerKey struct {
	kind Kind
	name any
}

func (k timerKey) eventType() EventType { return EventType{Kind: k.kind, Name: k.name} }

var (
	eventTimeoutKey = timerKey{kind: KindTimeout}
	stateTimeoutKey = timerKey{kind: KindStateTimeout}
)

// Action is one of gen_statem's transition actions. Actions run in the
// order given; for the options they set (postpone, hibernate, each timer)
// the last one wins.
type Action struct {
	kind    actionKind
	from    runtime.From
	value   any
	et      EventType
	key     timerKey
	op      timeoutOp
	timeout time.Duration
}

// Reply is {reply, From, Reply}: answer a call. The reply is sent when the
// action runs, before the transition's state enter call.
func Reply(from runtime.From, reply any) Action {
	return Action{kind: actReply, from: from, value: reply}
}

// Postpone is postpone: the current event is retried after the next state
// change. Not allowed in a state enter call; ignored in Init.
func Postpone() Action { return Action{kind: actPostpone} }

// NextEvent is {next_event, Kind, Content}: insert an event to be handled
// before any queued one. Inserted events keep the order they are given in.
// Not allowed in a state enter call. For a call event, which needs its
// From, use NextEventType.
func NextEvent(kind Kind, content any) Action {
	return NextEventType(EventType{Kind: kind}, content)
}

// NextEventType is NextEvent with a whole EventType, such as the type a
// callback received, to handle the same event again in another state.
func NextEventType(et EventType, content any) Action {
	return Action{kind: actNextEvent, et: et, value: content}
}

// Hibernate is hibernate: release the process's buffers while it waits.
func Hibernate() Action { return Action{kind: actHibernate} }

// EventTimeout is {timeout, Time, Content}: deliver a KindTimeout event
// after d unless some other event is handled first; any event cancels it.
func EventTimeout(d time.Duration, content any) Action {
	return timeoutAction(eventTimeoutKey, opSet, d, content)
}

// UpdateEventTimeout is {timeout, update, Content}. Since any event cancels
// the event timeout, this starts one that expires at once.
func UpdateEventTimeout(content any) Action {
	return timeoutAction(eventTimeoutKey, opUpdate, 0, content)
}

// CancelEventTimeout is {timeout, cancel}.
func CancelEventTimeout() Action { return timeoutAction(eventTimeoutKey, opCancel, 0, nil) }

// StateTimeout is {state_timeout, Time, Content}: deliver a
// KindStateTimeout event after d unless the state changes first. Set in a
// state change, it runs in the new state; setting it again restarts it.
func StateTimeout(d time.Duration, content any) Action {
	return timeoutAction(stateTimeoutKey, opSet, d, content)
}

// UpdateStateTimeout is {state_timeout, update, Content}: change the
// content of the running state timeout without touching its expiry; with
// none running, start one that expires at once.
func UpdateStateTimeout(content any) Action {
	return timeoutAction(stateTimeoutKey, opUpdate, 0, content)
}

// CancelStateTimeout is {state_timeout, cancel}.
func CancelStateTimeout() Action { return timeoutAction(stateTimeoutKey, opCancel, 0, nil) }

// GenericTimeout is {{timeout, Name}, Time, Content}: deliver a
// KindGenericTimeout event named name after d. Each name is its own timer,
// untouched by events and state changes; setting it again restarts it.
// The name must be comparable.
func GenericTimeout(name any, d time.Duration, content any) Action {
	return timeoutAction(timerKey{kind: KindGenericTimeout, name: name}, opSet, d, content)
}

// UpdateGenericTimeout is {{timeout, Name}, update, Content}: as
// UpdateStateTimeout, for the timer name.
func UpdateGenericTimeout(name, content any) Action {
	return timeoutAction(timerKey{kind: KindGenericTimeout, name: name}, opUpdate, 0, content)
}

// CancelGenericTimeout is {{timeout, Name}, cancel}.
func CancelGenericTimeout(name any) Action {
	return timeoutAction(timerKey{kind: KindGenericTimeout, name: name}, opCancel, 0, nil)
}

func timeoutAction(key timerKey, op timeoutOp, d time.Duration, content any) Action {
	if op == opSet && d == runtime.Infinity {
		op = opCancel
	}
	return Action{kind: actTimeout, key: key, op: op, timeout: max(d, 0), value: content}
}

// String describes the action for error reasons.
func (a Action) String() string {
	switch a.kind {
	case actReply:
		return fmt.Sprintf("reply %v", a.value)
	case actPostpone:
		return "postpone"
	case actNextEvent:
		return fmt.Sprintf("next_event %v %v", a.et, a.value)
	case actHibernate:
		return "hibernate"
	case actTimeout:
		t := a.key.eventType().String()
		switch a.op {
		case opUpdate:
			return fmt.Sprintf("%s update %v", t, a.value)
		case opCancel:
			return t + " cancel"
		}
		return fmt.Sprintf("%s %v %v", t, a.timeout, a.value)
	}
	return "the zero Action"
}
