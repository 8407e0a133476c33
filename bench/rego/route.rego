# The routing rules of a FoundryLicense (policy-core/src/rules/routing/), written in Rego for comparison.
# Hostname claims (which need other licenses) are not written here: the benchmark's calls carry none.
#
# Input: the `foundry/license/route` call (`license`, `instances`, `observations`, `now`), already valid.
# Output: `data.foundry.route.decision` with the facts the policy decides: the active and desired instance, each
# instance's state, reason, backend and hostname, the warnings (code and message), the pending switch, and one
# HTTPRoute per instance. Input validation, the status conditions and the YAML files are not written here; the
# comparison in the README says so.
package foundry.route

import rego.v1

license := input.license

spec := license.spec

license_name := license.metadata.name

nonempty(v) if {
	is_string(v)
	v != ""
}

namespace_of(obj) := obj.metadata.namespace if {
	nonempty(obj.metadata.namespace)
} else := "default"

namespace := namespace_of(license)

# Rule 1: the license's instances, by name, leaving out those being deleted (`metadata.deletionTimestamp`).
own := [inst |
	some inst in input.instances
	inst.spec.licenseRef.name == license_name
	namespace_of(inst) == namespace
	not being_deleted(inst)
]

being_deleted(inst) if nonempty(inst.metadata.deletionTimestamp)

scheduled(inst) if {
	_ = inst.metadata.annotations["foundry.platform/scheduled-delete-at"]
} else := false

scheduled_due(inst) if {
	at := inst.metadata.annotations["foundry.platform/scheduled-delete-at"]
	time.parse_rfc3339_ns(at) <= now_ns
} else := false

# The workload is configured for the current generation: a `Ready` condition that is `True`, for it.
ready(inst) if {
	status := object.get(inst, "status", {})
	some c in object.get(status, "conditions", [])
	c.type == "Ready"
	c.status == "True"
	object.get(status, "configuredGeneration", null) == object.get(inst.metadata, "generation", null)
} else := false

# `restrictions.maxInstances` admits the oldest instances: known creation times first, oldest first, then the
# rest, ties by name.
rfc3339 := `^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$`

age_key(inst) := [0, time.parse_rfc3339_ns(inst.metadata.creationTimestamp), inst.metadata.name] if {
	nonempty(inst.metadata.creationTimestamp)
	regex.match(rfc3339, inst.metadata.creationTimestamp)
} else := [1, 0, inst.metadata.name]

max_instances := spec.restrictions.maxInstances if is_number(spec.restrictions.maxInstances)

# The active instance is admitted first.
rank_key(inst) := array.concat([0], age_key(inst)) if {
	inst.metadata.name == current
} else := array.concat([1], age_key(inst))

admitted_names := {inst.metadata.name | some inst in own} if {
	not max_instances
} else := {key[3] |
	order := sort([rank_key(inst) | some inst in own])
	some i, key in order
	i < max_instances
}

members := {inst.metadata.name: {
	"scheduled": scheduled(inst),
	"due": scheduled_due(inst),
	"ready": ready(inst),
	"admitted": inst.metadata.name in admitted_names,
} |
	some inst in own
}

member_names := sort([n | some n, _ in members])

is_member(n) if {
	_ = members[n]
}

eligible(n) if {
	members[n].scheduled == false
	members[n].admitted
	members[n].ready
}

# Rule 2.
desired := spec.activeInstanceName if {
	nonempty(spec.activeInstanceName)
} else := ""

current := license.status.activeInstance if {
	nonempty(license.status.activeInstance)
} else := ""

current_eligible if {
	current != ""
	eligible(current)
}

# A current instance that may not stay but whose players the gate still protects.
current_leaving if {
	current != ""
	is_member(current)
	members[current].admitted
	not members[current].due
	not current_eligible
}

current_leaving_code := "ActiveInstanceScheduledForDeletion" if {
	members[current].scheduled
} else := "ActiveInstanceNotReady"

# Rule 3: the target the owner can have.
target := "" if {
	desired == ""
} else := desired if {
	eligible(desired)
} else := current if {
	current_eligible
} else := ""

desired_problem := "DesiredInstanceNotFound" if {
	desired != ""
	not is_member(desired)
}

desired_problem := "DesiredInstanceRefused" if {
	desired != ""
	is_member(desired)
	not members[desired].admitted
}

desired_problem := "DesiredInstanceScheduledForDeletion" if {
	desired != ""
	members[desired].admitted
	members[desired].scheduled
}

desired_problem := "DesiredInstanceNotReady" if {
	desired != ""
	members[desired].admitted
	not members[desired].scheduled
	not members[desired].ready
}

keep_words := sprintf("`%s` stays active", [target]) if {
	target != ""
} else := "no instance is active"

desired_warning := {"code": desired_problem, "message": sprintf("`%s` cannot be active; %s", [desired, keep_words])}

previous_warning := {"code": code, "message": sprintf("the previously active instance `%s` was released", [current])} if {
	current != ""
	not current_eligible
	not current_leaving
	target != current
	code := previous_code
}

previous_warning := {"code": current_leaving_code, "message": sprintf("the active instance `%s` is leaving", [current])} if {
	current_leaving
	target != current
}

previous_code := "PreviousActiveInstanceGone" if {
	not is_member(current)
} else := "PreviousActiveInstanceRefused" if {
	not members[current].admitted
} else := "PreviousActiveInstanceScheduledForDeletion"

# Rule 4: the switch gate.
gate_applies if {
	current != ""
	target != current
	current_eligible
}

gate_applies if {
	target != current
	current_leaving
}

forced if object.get(spec, "switchMode", "block") == "force"

gated if {
	gate_applies
	not forced
}

players := object.get(object.get(input, "observations", {}), "players", [])

same_namespace := [p |
	some p in players
	p.instance == current
	object.get(p, "namespace", null) == namespace
]

any_namespace := [p |
	some p in players
	p.instance == current
	object.get(p, "namespace", null) == null
]

observation := same_namespace[0] if {
	count(same_namespace) > 0
} else := any_namespace[0]

connected := observation.connected if is_number(observation.connected)

has_count if {
	_ = connected
}

blocked := "PlayersConnected" if {
	gated
	connected > 0
}

blocked := "PlayerCountUnknown" if {
	gated
	not has_count
}

# Rule 5: the grace period, counted from a trusted `status.pendingSince` (else from now).
now_ns := time.parse_rfc3339_ns(input.now)

recorded_ns := t if {
	nonempty(license.status.pendingSince)
	regex.match(rfc3339, license.status.pendingSince)
	t := time.parse_rfc3339_ns(license.status.pendingSince)
	t <= now_ns
}

since_ns := recorded_ns if {
	_ = recorded_ns
} else := now_ns

grace_ns := time.parse_duration_ns(spec.switchGracePeriod)

grace_over if {
	now_ns - since_ns >= grace_ns
}

target_words := sprintf("switch to `%s`", [target]) if {
	target != ""
} else := "deactivation"

blocked_words := sprintf("%d players are connected to `%s`", [connected, current]) if {
	blocked == "PlayersConnected"
} else := sprintf("the player count of `%s` is unknown", [current])

pending if {
	_ = blocked
	not grace_over
}

forced_code := "SwitchForcedPlayersConnected" if {
	gate_applies
	forced
	connected > 0
}

forced_code := "SwitchForcedPlayerCountUnknown" if {
	gate_applies
	forced
	not has_count
}

gate_warning := {"code": forced_code, "message": "the switch was forced"} if {
	_ = forced_code
}

gate_warning := {"code": "SwitchForcedAfterGracePeriod", "message": msg} if {
	_ = blocked
	grace_over
	msg := sprintf("%s is blocked: %s, but it has waited longer than the grace period; switching anyway", [target_words, blocked_words])
}

gate_warning := {"code": concat("", ["SwitchBlocked", blocked]), "message": msg} if {
	pending
	msg := sprintf("%s is blocked: %s", [target_words, blocked_words])
}

active := current if {
	pending
} else := target

default_standby := {"serviceName": "foundry-standby-page", "namespace": "foundry-vtt", "port": 80}

standby_warning := {"code": "StandbyServiceNotManaged", "message": "the standby Service is not the platform's"} if {
	standby_backend != {"name": default_standby.serviceName, "namespace": default_standby.namespace, "port": default_standby.port}
}

warnings := array.concat(array.concat(array.concat(
	[w | w := desired_warning],
	[w | w := previous_warning],
), [w | w := gate_warning]), [w | w := standby_warning])

pending_since := since_ns if {
	pending
} else := null

# Each instance's state, reason, backend and hostname.
standby := object.get(spec, "standby", {})

standby_backend := {
	"name": object.get(standby, "serviceName", "foundry-standby-page"),
	"namespace": object.get(standby, "namespace", "foundry-vtt"),
	"port": object.get(standby, "port", 80),
}

reason(n) := "KeptWhileSwitchBlocked" if {
	n == active
	pending
} else := "KeptWhileRequestIneligible" if {
	n == active
	_ = desired_problem
} else := "Selected" if {
	n == active
} else := "RefusedInstanceLimit" if {
	not members[n].admitted
} else := "ScheduledForDeletion" if {
	members[n].scheduled
} else := "SwitchPending" if {
	pending
	n == target
} else := "WorkloadNotReady" if {
	not members[n].ready
} else := "NotSelected"

backend(n) := {"name": concat("", ["foundry-", n]), "namespace": namespace, "port": 80} if {
	n == active
} else := standby_backend

state(n) := "active" if {
	n == active
} else := "standby"

base_domain := spec.gateway.baseDomain if {
	nonempty(spec.gateway.baseDomain)
} else := spec.baseDomain

hostname(n) := concat(".", [n, base_domain])

instances := [{
	"name": n,
	"state": state(n),
	"reason": reason(n),
	"backend": backend(n),
	"hostname": hostname(n),
} |
	some n in member_names
]

# Rule 6: one HTTPRoute per instance.
parent_ref := object.get(object.get(spec, "gateway", {}), "parentRef", {"name": "default-gateway"})

route(i) := {
	"apiVersion": "gateway.networking.k8s.io/v1",
	"kind": "HTTPRoute",
	"metadata": {
		"name": concat("", ["foundry-id-", i.name]),
		"namespace": namespace,
		"labels": {
			"app.kubernetes.io/part-of": "foundry-vtt",
			"foundry.platform/license": license_name,
			"foundry.platform/instance": i.name,
			"foundry.platform/route-state": i.state,
		},
	},
	"spec": {
		"parentRefs": [parent_ref],
		"hostnames": [i.hostname],
		"rules": [{"backendRefs": [i.backend]}],
	},
}

decision := {
	"activeInstance": active,
	"desiredInstance": desired,
	"instances": instances,
	"warnings": warnings,
	"pendingSince": pending_since,
	"manifests": [route(i) | some i in instances],
}
