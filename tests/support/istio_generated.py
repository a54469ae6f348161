"""What Istio generates for RequestAuthentication and AuthorizationPolicy resources, in the
shapes of istio/istio pilot/pkg/security/authn (jwt_authn: a provider per jwtRule, the payload
in metadata under `payload`, a token from any of them or none) and pilot/pkg/security/authz
(builder testdata extended-*-out.yaml and model/generator.go: requestPrincipals as andIds of
[payload, iss] and [payload, sub] metadata matchers, `*` as safeRegex .+, claims as an orMatch of
a listMatch and a stringMatch, paths as urlPath, methods as :method headers, a DENY filter before
the ALLOW filter). The e2e tests run this as "the original" beside jwt-guard's import.

Only the forms the import corpus uses are written; anything else raises, so a new corpus
entry cannot be compared against a guess.
"""

from __future__ import annotations

JWT_AUTHN = "envoy.filters.http.jwt_authn"


def jwt_authn(request_authentications: list[dict], jwks_for) -> dict:
    providers, requirements = {}, []
    for ra in request_authentications:
        for i, rule in enumerate(ra["spec"]["jwtRules"]):
            name = f"origins-{len(providers)}"
            p = {"issuer": rule["issuer"], "payload_in_metadata": "payload",
                 "local_jwks": {"inline_string": jwks_for(rule["issuer"])},
                 "normalize_payload_in_metadata": {"space_delimited_claims":
                                                   ["scope", "permission"] + rule.get("spaceDelimitedClaims", [])}}
            if rule.get("audiences"):
                p["audiences"] = rule["audiences"]
            if rule.get("forwardOriginalToken"):
                p["forward"] = True
            for key in ("fromHeaders", "fromParams", "fromCookies", "outputPayloadToHeader", "outputClaimToHeaders"):
                if key in rule:
                    raise NotImplementedError(key)
            providers[name] = p
            requirements.append({"provider_name": name})
    requirements.append({"allow_missing": {}})
    return {"name": JWT_AUTHN, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": providers, "bypass_cors_preflight": True,
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": requirements}}}]}}


def _string(value: str) -> dict:
    if value == "*":
        return {"safeRegex": {"regex": ".+"}}
    if value.startswith("*"):
        return {"suffix": value[1:]}
    if value.endswith("*"):
        return {"prefix": value[:-1]}
    return {"exact": value}


def _meta(key: str | list[str], value: dict) -> dict:
    keys = [key] if isinstance(key, str) else key
    return {"metadata": {"filter": JWT_AUTHN, "path": [{"key": "payload"}] + [{"key": k} for k in keys], "value": value}}


def _request_principal(value: str) -> dict:
    if value == "*":
        iss, sub = "*", "*"
    else:
        iss, _, sub = value.rpartition("/")
        if "*" in value[1:-1]:
            raise NotImplementedError(value)
    return {"andIds": {"ids": [_meta("iss", {"stringMatch": _string(iss)}),
                               _meta("sub", {"stringMatch": _string(sub)})]}}


def _claim(claim: str | list[str], values: list[str]) -> dict:
    return {"orIds": {"ids": [_meta(claim, {"orMatch": {"valueMatchers": [
        {"listMatch": {"oneOf": {"stringMatch": _string(v)}}}, {"stringMatch": _string(v)}]}})
        for v in values]}}


def _path(value: str) -> dict:
    if value == "*":
        return {"urlPath": {"path": {"safeRegex": {"regex": ".+"}}}}
    return {"urlPath": {"path": _string(value)}}


def _policy(rule: dict) -> dict:
    ids = []
    for src in [f["source"] for f in rule.get("from", [])]:
        for key in src:
            if key not in ("requestPrincipals", "notRequestPrincipals"):
                raise NotImplementedError(key)
        if "requestPrincipals" in src:
            ids.append({"orIds": {"ids": [_request_principal(v) for v in src["requestPrincipals"]]}})
        if "notRequestPrincipals" in src:
            ids.append({"notId": {"orIds": {"ids": [_request_principal(v) for v in src["notRequestPrincipals"]]}}})
    for cond in rule.get("when", []):
        key = cond["key"]
        if "notValues" in cond:
            raise NotImplementedError(key)
        if key.startswith("request.auth.claims["):
            ids.append(_claim(key[len("request.auth.claims["):-1].split("]["), cond["values"]))
        elif key == "request.auth.principal":
            ids.append({"orIds": {"ids": [_request_principal(v) for v in cond["values"]]}})
        elif key in ("request.auth.audiences", "request.auth.presenter"):
            ids.append(_claim("aud" if key.endswith("audiences") else "azp", cond["values"]))
        else:
            raise NotImplementedError(key)
    rules = []
    for op in [t["operation"] for t in rule.get("to", [])]:
        for key in op:
            if key not in ("paths", "methods"):
                raise NotImplementedError(key)
        if "paths" in op:
            rules.append({"orRules": {"rules": [_path(p) for p in op["paths"]]}})
        if "methods" in op:
            rules.append({"orRules": {"rules": [{"header": {"name": ":method", "stringMatch": {"exact": m}}}
                                                for m in op["methods"]]}})
    permission = {"andRules": {"rules": rules}} if rules else {"any": True}
    principal = {"andIds": {"ids": ids}} if ids else {"any": True}
    return {"permissions": [permission], "principals": [principal]}


def rbac_filters(authorization_policies: list[dict]) -> list[dict]:
    """The DENY filter, then the ALLOW filter (each only when a policy has that action)."""
    out = []
    for action in ("DENY", "ALLOW"):
        policies = {}
        for ap in authorization_policies:
            if ap["spec"].get("action", "ALLOW") != action:
                continue
            meta = ap["metadata"]
            for i, rule in enumerate(ap["spec"].get("rules", [])):
                policies[f"ns[{meta.get('namespace', 'default')}]-policy[{meta['name']}]-rule[{i}]"] = _policy(rule)
        if any(ap["spec"].get("action", "ALLOW") == action for ap in authorization_policies):
            out.append({"name": "envoy.filters.http.rbac", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                "rules": {"action": action, "policies": policies}}})
    return out
