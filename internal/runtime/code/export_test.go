package code

// SetHooks installs functions an upgrade calls before taking a module's
// lock and once every process has been suspended.
func SetHooks(r *Registry, lock, suspended func()) {
	r.hookLock, r.hookSuspended = lock, suspended
}
