#!/usr/bin/env python3
"""A local HTTPS stand-in for the Kubernetes API server, for palisade's k8s tests.

It speaks the wire format of the real API server for what palisade uses:

- LIST with limit/continue and fieldSelector=spec.nodeName=..., answering `{"kind": "PodList",
  "apiVersion": "v1", "metadata": {"resourceVersion": ...}, "items": [...]}`;
- WATCH (`?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=N`) as a chunked
  response of one JSON object per line (`{"type": "ADDED", "object": {...}}`), flushed per event,
  replaying history after RV; BOOKMARK events carry an object with only kind, apiVersion and
  metadata.resourceVersion; a version older than the history window gets an ERROR event whose
  object is a Status with code 410 (reason Expired), or an HTTP 410 when asked to;
- GET of single objects (ReplicaSets, Jobs), POST of core/v1 Events (validated like the API
  server validates Events that carry an eventTime), PATCH of a custom resource's status
  subresource with application/merge-patch+json (RFC 7386);
- authentication by `Authorization: Bearer <token>` or by a client certificate signed by the test
  CA; anything else gets a 401 Status.

Shapes follow the Kubernetes documentation:
  https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
  https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-bookmarks
  https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
  https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/
  https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/

A plain-HTTP control port on 127.0.0.1 lets the test drive it (POST JSON to /<command>):
  push {type, object}       apply an ADDED/MODIFIED/DELETED change and stream it to watchers
  quiet_delete {kind, namespace, name}   delete without a watch event (a change missed while away)
  compact                   forget the history: older resourceVersions now get 410
  gone {mode: event|http}   the next watch request gets a 410 (ERROR event or HTTP status)
  bookmark                  send a BOOKMARK at the current resourceVersion to bookmark watchers
  expire                    end every open watch normally (as timeoutSeconds would)
  down / up                 stop listening and drop every connection / listen again, same port
  set_token {token}         change the accepted bearer token
  authorize {user, rules}   from now on authorize every request as RBAC does, against these
                            PolicyRules (a ClusterRole's, bound to the token's user): anything
                            else gets a 403 Forbidden Status
  require_crds              custom resources are served only once their CRD is applied
  apply {object}            apply a CustomResourceDefinition (checked against what is served)
  GET /requests, /events, /object?kind=&namespace=&name=, /state   what the server saw
  GET /rbac                 {used: [[group, resource, verb]...], denied: [...]}
On start it prints "READY <api port> <control port>" on stdout.
Test certificates (CA, server for 127.0.0.1/localhost, client) are made with the openssl CLI in
--certs DIR when missing.
"""

import argparse
import copy
import http.server
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

# Collections served: resource name -> (API prefix, kind, namespaced).
RESOURCES = {
    "pods": ("/api/v1", "Pod", True),
    "events": ("/api/v1", "Event", True),
    "replicasets": ("/apis/apps/v1", "ReplicaSet", True),
    "jobs": ("/apis/batch/v1", "Job", True),
    "palisadepolicies": ("/apis/palisade.dev/v1", "PalisadePolicy", True),
    "clusterpalisadepolicies": ("/apis/palisade.dev/v1", "ClusterPalisadePolicy", False),
}
KIND_TO_RESOURCE = {kind: res for res, (_, kind, _) in RESOURCES.items()}
API_VERSION = {
    "/api/v1": "v1",
    "/apis/apps/v1": "apps/v1",
    "/apis/batch/v1": "batch/v1",
    "/apis/palisade.dev/v1": "palisade.dev/v1",
}
HISTORY_LIMIT = 1000


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def make_certs(directory):
    if os.path.exists(os.path.join(directory, "client.key")):
        return
    os.makedirs(directory, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=palisade-test-ca")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext")
    run("req", *ec, "-keyout", "client.key.tmp", "-out", "client.csr",
        "-subj", "/O=system:nodes/CN=system:node:node-a")
    with open(os.path.join(directory, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "client.crt", "-days", "2", "-extfile", "client.ext")
    # A second, unrelated CA: a client trusting it must refuse the server.
    run("req", "-x509", *ec, "-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "2",
        "-subj", "/CN=some-other-ca")
    os.rename(os.path.join(directory, "client.key.tmp"), os.path.join(directory, "client.key"))


class State:
    """Objects, the global resourceVersion and the change history, under one lock."""

    def __init__(self, fixtures, token):
        self.cond = threading.Condition()
        self.token = token
        self.objects = {res: {} for res in RESOURCES}  # res -> (ns, name) -> object
        self.rv = 0
        self.history = []           # (rv, res, type, object)
        self.history_floor = 0      # watches from an rv below this are too old
        self.bookmark_gen = 0
        self.expire_gen = 0
        self.gone_next = None       # None, "event" or "http"
        self.requests = []
        self.events = []
        self.rbac_user = None       # authorize: the user the rules are bound to
        self.rbac_rules = None      # None: everything is allowed (authentication only)
        self.rbac_used = set()
        self.rbac_denied = []
        self.crds_required = False
        self.crds = set()           # resources whose CRD was applied
        for res in RESOURCES:
            path = os.path.join(fixtures, res + ".json")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                listing = json.load(f)
            for item in listing["items"]:
                meta = item["metadata"]
                self.objects[res][(meta.get("namespace", ""), meta["name"])] = item
                self.rv = max(self.rv, int(meta["resourceVersion"]))
            self.rv = max(self.rv, int(listing["metadata"]["resourceVersion"]))
        self.history_floor = self.rv

    def typed(self, res, obj):
        prefix, kind, _ = RESOURCES[res]
        out = copy.deepcopy(obj)
        out["kind"] = kind
        out["apiVersion"] = API_VERSION[prefix]
        return out

    def change(self, res, kind_of_change, obj, notify=True):
        """Applies a change with a new resourceVersion; call with the lock held."""
        self.rv += 1
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self.rv)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        key = (meta.get("namespace", ""), meta["name"])
        if kind_of_change == "DELETED":
            self.objects[res].pop(key, None)
        else:
            self.objects[res][key] = obj
        if notify:
            self.history.append((self.rv, res, kind_of_change, copy.deepcopy(obj)))
            if len(self.history) > HISTORY_LIMIT:
                dropped = self.history.pop(0)
                self.history_floor = dropped[0]
        else:
            # A change nobody may watch: the history before it can no longer be replayed.
            self.history = []
            self.history_floor = self.rv
        self.cond.notify_all()


def api_group(prefix):
    return "" if prefix == "/api/v1" else prefix.split("/")[2]


def verb_of(method, name, query):
    """The RBAC verb of a request, as kube-apiserver's request-info resolver names it."""
    if method == "GET":
        if not name:
            return "watch" if query.get("watch", [""])[0] in ("1", "true") else "list"
        return "get"
    return {"POST": "create", "PATCH": "patch", "PUT": "update",
            "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())


def rule_allows(rule, group, resource, verb):
    def has(field, value):
        values = rule.get(field, [])
        return "*" in values or value in values
    return has("apiGroups", group) and has("resources", resource) and has("verbs", verb)


def check_crd(crd):
    """A CustomResourceDefinition must describe a resource as this server serves it."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    res = names.get("plural", "")
    if crd.get("kind") != "CustomResourceDefinition" or res not in RESOURCES:
        return None, "not a CustomResourceDefinition of a resource served here: " + res
    prefix, kind, namespaced = RESOURCES[res]
    versions = [v for v in spec.get("versions", []) if v.get("served")]
    expected_name = res + "." + spec.get("group", "")
    problems = []
    if crd.get("metadata", {}).get("name") != expected_name:
        problems.append("metadata.name must be " + expected_name)
    if prefix != "/apis/%s/%s" % (spec.get("group"), versions[0]["name"] if versions else ""):
        problems.append("group/version does not match " + prefix)
    if names.get("kind") != kind:
        problems.append("names.kind must be " + kind)
    if (spec.get("scope") == "Namespaced") != namespaced:
        problems.append("scope must be " + ("Namespaced" if namespaced else "Cluster"))
    if not any("status" in v.get("subresources", {}) for v in versions):
        problems.append("the status subresource is not enabled")
    if not all(v.get("schema", {}).get("openAPIV3Schema") for v in versions):
        problems.append("a served version has no openAPIV3Schema")
    return res, "; ".join(problems)


def node_filter(query):
    selector = query.get("fieldSelector", [""])[0]
    if not selector:
        return lambda obj: True
    field, _, value = selector.replace("==", "=").partition("=")
    if field != "spec.nodeName":
        raise ValueError("field label not supported: " + field)
    return lambda obj: obj.get("spec", {}).get("nodeName", "") == value


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_APISERVER_VERBOSE"):
            sys.stderr.write("fake-apiserver: " + (fmt % args) + "\n")

    def setup(self):
        self.request.settimeout(10)
        self.request.do_handshake()
        self.request.settimeout(None)
        super().setup()
        self.server.track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    # --- plumbing -------------------------------------------------------------------------

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(length) if length else b""

    def record(self, body):
        state = self.server.state
        entry = {
            "method": self.command,
            "path": urllib.parse.urlsplit(self.path).path,
            "query": urllib.parse.urlsplit(self.path).query,
            "authorization": self.headers.get("Authorization", ""),
            "accept": self.headers.get("Accept", ""),
            "user_agent": self.headers.get("User-Agent", ""),
            "content_type": self.headers.get("Content-Type", ""),
            "client_cert": bool(self.connection.getpeercert()),
        }
        if body:
            try:
                entry["body"] = json.loads(body)
            except ValueError:
                entry["body"] = body.decode(errors="replace")
        with state.cond:
            state.requests.append(entry)
            del state.requests[:-500]

    def authenticated(self):
        if self.connection.getpeercert():  # verified against the test CA by the TLS layer
            return True
        with self.server.state.cond:
            expected = "Bearer " + self.server.state.token
        return self.headers.get("Authorization", "") == expected

    def route(self):
        """Returns (res, namespace, name, subresource) or None."""
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        for prefix in API_VERSION:
            if not path.startswith(prefix + "/"):
                continue
            parts = path[len(prefix) + 1:].split("/")
            ns = ""
            if parts[0] == "namespaces" and len(parts) >= 3:
                ns, parts = parts[1], parts[2:]
            res = parts[0]
            if res not in RESOURCES or RESOURCES[res][0] != prefix:
                return None
            name = parts[1] if len(parts) > 1 else ""
            sub = parts[2] if len(parts) > 2 else ""
            return res, ns, name, sub, prefix
        return None

    def authorized(self, res, ns, name, sub, prefix):
        """RBAC: True, or sends the 403 kube-apiserver sends and returns False."""
        state = self.server.state
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        group, verb = api_group(prefix), verb_of(self.command, name, query)
        resource = res + ("/" + sub if sub else "")
        with state.cond:
            if state.rbac_rules is None:
                return True
            if any(rule_allows(r, group, resource, verb) for r in state.rbac_rules):
                state.rbac_used.add((group, resource, verb))
                return True
            state.rbac_denied.append([group, resource, verb])
            user = state.rbac_user
        scope = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
        message = '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
            resource, user, verb, resource, group, scope)
        self.send_json(403, status(403, "Forbidden", message))
        return False

    def handle_api(self, method):
        body = self.read_body() if method in ("POST", "PATCH") else b""
        self.record(body)
        if not self.authenticated():
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        route = self.route()
        if route is None:
            return self.send_json(404, status(404, "NotFound", "the server could not find the "
                                                               "requested resource"))
        res, ns, name, sub, prefix = route
        with self.server.state.cond:
            missing_crd = self.server.state.crds_required and prefix.startswith("/apis/palisade") \
                and res not in self.server.state.crds
        if missing_crd:
            return self.send_json(404, status(404, "NotFound", "the server could not find the "
                                                               "requested resource"))
        if not self.authorized(res, ns, name, sub, prefix):
            return None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if method == "GET" and not name:
            if query.get("watch", [""])[0] in ("1", "true"):
                return self.watch(res, ns, query)
            return self.list(res, ns, query)
        if method == "GET":
            return self.get(res, ns, name)
        if method == "POST" and res == "events" and not name:
            return self.create_event(ns, body)
        if method == "PATCH" and sub == "status":
            return self.patch_status(res, ns, name, body)
        return self.send_json(405, status(405, "MethodNotAllowed", "not supported here"))

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PATCH(self):
        self.handle_api("PATCH")

    # --- verbs --------------------------------------------------------------------------------

    def matching(self, res, ns, query):
        keep = node_filter(query)
        return [obj for (ons, _), obj in sorted(self.server.state.objects[res].items())
                if (not ns or ons == ns) and keep(obj)]

    def list(self, res, ns, query):
        state = self.server.state
        try:
            with state.cond:
                items = self.matching(res, ns, query)
                rv = state.rv
        except ValueError as e:
            return self.send_json(400, status(400, "BadRequest", str(e)))
        limit = int(query.get("limit", ["0"])[0] or 0)
        start = int(query.get("continue", ["0"])[0] or 0)
        meta = {"resourceVersion": str(rv)}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
        page = items[start:start + limit] if limit else items
        _, kind, _ = RESOURCES[res]
        prefix = RESOURCES[res][0]
        self.send_json(200, {"kind": kind + "List", "apiVersion": API_VERSION[prefix],
                             "metadata": meta, "items": page})

    def get(self, res, ns, name):
        state = self.server.state
        with state.cond:
            obj = state.objects[res].get((ns, name))
            obj = state.typed(res, obj) if obj else None
        if obj is None:
            group = RESOURCES[res][0].split("/")[2] if res not in ("pods", "events") else ""
            label = res + ("." + group if group and group != "v1" else "")
            return self.send_json(404, status(404, "NotFound", '%s "%s" not found' % (label, name)))
        self.send_json(200, obj)

    def write_chunk(self, obj):
        data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, res, ns, query):
        state = self.server.state
        try:
            keep = node_filter(query)
        except ValueError as e:
            return self.send_json(400, status(400, "BadRequest", str(e)))
        bookmarks = query.get("allowWatchBookmarks", [""])[0] == "true"
        timeout = float(query.get("timeoutSeconds", ["1800"])[0])
        since = query.get("resourceVersion", [""])[0]
        with state.cond:
            gone = state.gone_next
            state.gone_next = None
            too_old = since not in ("", "0") and int(since) < state.history_floor
            # Taken before the response starts: a bookmark or expiry asked for once the client
            # sees the stream open must reach this watch.
            bookmark_gen = state.bookmark_gen
            expire_gen = state.expire_gen
            if gone == "http":
                expired = status(410, "Expired", "too old resource version: %s (%d)" %
                                 (since, state.history_floor))
                return self.send_json(410, expired)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        _, kind, _ = RESOURCES[res]
        api_version = API_VERSION[RESOURCES[res][0]]
        if gone == "event" or too_old:
            with state.cond:
                floor = state.history_floor
            self.write_chunk({"type": "ERROR", "object": status(
                410, "Expired", "too old resource version: %s (%d)" % (since, floor))})
            return self.end_stream()
        with state.cond:
            if since in ("", "0"):  # no version: the current state as synthetic ADDED events
                pending = [("ADDED", state.typed(res, o)) for o in self.matching(res, ns, query)]
                cursor = state.rv
            else:
                pending, cursor = [], int(since)
        deadline = time.monotonic() + timeout
        while True:
            for change, obj in pending:
                self.write_chunk({"type": change, "object": obj})
            pending = []
            with state.cond:
                while True:
                    if self.server.stopping:
                        return  # no terminating chunk: the client sees a dropped connection
                    if state.expire_gen != expire_gen:
                        return self.end_stream()
                    if time.monotonic() >= deadline:
                        return self.end_stream()
                    if cursor < state.history_floor:
                        floor = state.history_floor
                        break
                    new = [(rv, c, o) for (rv, r, c, o) in state.history
                           if rv > cursor and r == res and
                           (not ns or o["metadata"].get("namespace", "") == ns) and keep(o)]
                    if new:
                        cursor = max(rv for rv, _, _ in new)
                        pending = [(c, state.typed(res, o)) for _, c, o in new]
                        # Later changes that did not match still move this watch forward.
                        cursor = max(cursor, max((h[0] for h in state.history), default=cursor))
                        break
                    if state.bookmark_gen != bookmark_gen:
                        bookmark_gen = state.bookmark_gen
                        if bookmarks:
                            cursor = state.rv
                            pending = [("BOOKMARK", {"kind": kind, "apiVersion": api_version,
                                                     "metadata": {"resourceVersion": str(state.rv)}})]
                            break
                    state.cond.wait(0.1)
            if not pending:  # fell behind the history window
                self.write_chunk({"type": "ERROR", "object": status(
                    410, "Expired", "too old resource version: %d (%d)" % (cursor, floor))})
                return self.end_stream()

    def end_stream(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass

    def create_event(self, ns, body):
        state = self.server.state
        try:
            event = json.loads(body)
        except ValueError:
            return self.send_json(400, status(400, "BadRequest", "body is not JSON"))
        errors = validate_event(ns, event)
        if errors:
            message = 'Event "%s" is invalid: %s' % (event.get("metadata", {}).get("name", ""),
                                                     ", ".join(errors))
            return self.send_json(422, status(422, "Invalid", message))
        with state.cond:
            event.setdefault("metadata", {})["namespace"] = ns
            state.change("events", "ADDED", event)
            state.events.append(copy.deepcopy(event))
            del state.events[:-1000]
            out = state.typed("events", event)
        self.send_json(201, out)

    def patch_status(self, res, ns, name, body):
        state = self.server.state
        if self.headers.get("Content-Type", "").split(";")[0].strip() != \
                "application/merge-patch+json":
            return self.send_json(415, status(415, "UnsupportedMediaType",
                                              "the body of the request was in an unknown format"))
        try:
            patch = json.loads(body)
        except ValueError:
            return self.send_json(400, status(400, "BadRequest", "body is not JSON"))
        with state.cond:
            obj = state.objects[res].get((ns, name))
            if obj is None:
                return self.send_json(404, status(404, "NotFound", '%s "%s" not found' %
                                                  (res, name)))
            # The status subresource ignores everything but .status.
            updated = copy.deepcopy(obj)
            updated["status"] = merge_patch(obj.get("status", {}), patch.get("status", {}))
            state.change(res, "MODIFIED", updated)
            out = state.typed(res, updated)
        self.send_json(200, out)


def validate_event(ns, event):
    """The checks kube-apiserver applies to a core/v1 Event that sets eventTime."""
    errors = []
    meta = event.get("metadata", {})
    involved = event.get("involvedObject", {})
    if meta.get("namespace", ns) != ns:
        errors.append("metadata.namespace: does not match the namespace of the request")
    if involved.get("namespace", "") != ns:
        errors.append("involvedObject.namespace: does not match event.namespace")
    if not meta.get("name"):
        errors.append("metadata.name: Required value")
    if event.get("eventTime"):
        for field, limit in (("reportingComponent", 0), ("reportingInstance", 128),
                             ("action", 128), ("reason", 128)):
            value = event.get(field, "")
            if not value:
                errors.append(field + ": Required value")
            elif limit and len(value) > limit:
                errors.append("%s: can have at most %d characters" % (field, limit))
        if len(event.get("message", "")) > 1024:
            errors.append("message: can have at most 1024 characters")
    return errors


class ApiServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, state, tls):
        self.state = state
        self.tls = tls
        self.stopping = False
        self.connections = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), Handler)

    def get_request(self):
        sock, addr = super().get_request()
        # The handshake happens in the handler's thread (on first read), not in accept().
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def track(self, conn, add):
        with self.connections_lock:
            (self.connections.add if add else self.connections.discard)(conn)

    def drop_all(self):
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # TLS failures and dropped peers are expected in these tests


class Control(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, obj, code=200):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        fake = self.server.fake
        state = fake.state
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        with state.cond:
            if url.path == "/requests":
                return self.reply(state.requests)
            if url.path == "/events":
                return self.reply(state.events)
            if url.path == "/rbac":
                return self.reply({"used": sorted(list(u) for u in state.rbac_used),
                                   "denied": state.rbac_denied})
            if url.path == "/state":
                return self.reply({"resourceVersion": str(state.rv),
                                   "history_floor": state.history_floor})
            if url.path == "/object":
                res = KIND_TO_RESOURCE[q["kind"]]
                obj = state.objects[res].get((q.get("namespace", ""), q["name"]))
                return self.reply(state.typed(res, obj) if obj else None)
        self.reply({"error": "unknown"}, 404)

    def do_POST(self):
        fake = self.server.fake
        state = fake.state
        length = int(self.headers.get("Content-Length", "0"))
        args = json.loads(self.rfile.read(length) or b"{}")
        command = self.path.strip("/")
        if command == "down":
            fake.down()
            return self.reply({"ok": True})
        if command == "up":
            fake.up()
            return self.reply({"ok": True})
        with state.cond:
            if command == "push":
                obj = copy.deepcopy(args["object"])
                res = KIND_TO_RESOURCE[obj["kind"]]
                obj.pop("kind", None)
                obj.pop("apiVersion", None)
                meta = obj["metadata"]
                old = state.objects[res].get((meta.get("namespace", ""), meta["name"]))
                if args["type"] == "MODIFIED" and old is not None and \
                        old.get("spec") != obj.get("spec"):
                    meta["generation"] = old["metadata"].get("generation", 1) + 1
                state.change(res, args["type"], obj)
                return self.reply({"resourceVersion": str(state.rv)})
            if command == "quiet_delete":
                res = KIND_TO_RESOURCE[args["kind"]]
                obj = state.objects[res].get((args.get("namespace", ""), args["name"]))
                if obj is not None:
                    state.change(res, "DELETED", copy.deepcopy(obj), notify=False)
                return self.reply({"resourceVersion": str(state.rv)})
            if command == "compact":
                state.history = []
                state.history_floor = state.rv
                state.cond.notify_all()
                return self.reply({"ok": True})
            if command == "gone":
                state.gone_next = args.get("mode", "event")
                return self.reply({"ok": True})
            if command == "bookmark":
                state.bookmark_gen += 1
                state.cond.notify_all()
                return self.reply({"resourceVersion": str(state.rv)})
            if command == "expire":
                state.expire_gen += 1
                state.cond.notify_all()
                return self.reply({"ok": True})
            if command == "set_token":
                state.token = args["token"]
                return self.reply({"ok": True})
            if command == "authorize":
                state.rbac_user = args["user"]
                state.rbac_rules = args["rules"]
                state.rbac_used = set()
                state.rbac_denied = []
                return self.reply({"ok": True})
            if command == "require_crds":
                state.crds_required = True
                return self.reply({"ok": True})
            if command == "apply":
                res, problem = check_crd(args["object"])
                if problem:
                    return self.reply({"error": problem}, 422)
                state.crds.add(res)
                return self.reply({"ok": True, "resource": res})
        self.reply({"error": "unknown command " + command}, 404)


class Fake:
    def __init__(self, args):
        self.state = State(args.fixtures, args.token)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(os.path.join(args.certs, "server.crt"),
                                 os.path.join(args.certs, "server.key"))
        self.tls.load_verify_locations(os.path.join(args.certs, "ca.crt"))
        self.tls.verify_mode = ssl.CERT_OPTIONAL  # a client certificate is one way to log in
        self.port = 0
        self.server = None
        self.lock = threading.Lock()
        self.up()

    def up(self):
        with self.lock:
            if self.server is not None:
                return
            self.server = ApiServer(self.port, self.state, self.tls)
            self.port = self.server.server_address[1]
            threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True).start()

    def down(self):
        with self.lock:
            server, self.server = self.server, None
        if server is None:
            return
        server.stopping = True
        with self.state.cond:
            self.state.cond.notify_all()
        server.shutdown()
        server.server_close()
        server.drop_all()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", required=True)
    parser.add_argument("--fixtures", default="")
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--certs-only", action="store_true", help="make the certificates, exit")
    args = parser.parse_args()
    make_certs(args.certs)
    if args.certs_only:
        return
    fake = Fake(args)
    parent = os.getppid()

    def exit_with_parent():
        # A crashed test never kills us: leave when we are re-parented.
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    control = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Control)
    control.daemon_threads = True
    control.fake = fake
    print("READY %d %d" % (fake.port, control.server_address[1]), flush=True)
    try:
        control.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
