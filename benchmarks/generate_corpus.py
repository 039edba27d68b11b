"""A realistic corpus of rendered Helm output: one multi-document file per chart release, each with the
objects a service ships (Deployment, Service, ConfigMap, ServiceAccount, HPA, PDB, NetworkPolicy, Ingress,
ExternalSecret), some hardened and some not, spread over namespaces.

    python benchmarks/generate_corpus.py OUT_DIR --objects 5000
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

OBJECTS_PER_RELEASE = 10
RELEASES_PER_NAMESPACE = 25


def release(name: str, namespace: str, rng: random.Random) -> list[tuple[str, str]]:
    """(template path, YAML) for one chart release."""
    hardened = rng.random() < 0.6
    port = rng.choice([3000, 8080, 9090])
    labels = (f"app.kubernetes.io/name: {name}\n    app.kubernetes.io/instance: {name}\n"
              f"    app.kubernetes.io/part-of: shop\n    app.kubernetes.io/managed-by: Helm\n"
              f"    helm.sh/chart: {name}-1.2.3")
    selector = f"app.kubernetes.io/name: {name}\n      app.kubernetes.io/instance: {name}"

    def metadata(object_name: str) -> str:
        return f"metadata:\n  name: {object_name}\n  namespace: {namespace}\n  labels:\n    {labels}\n"
    security = """
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities: {drop: [ALL]}
            seccompProfile: {type: RuntimeDefault}""" if hardened else ""
    probes = """
          readinessProbe:
            httpGet: {path: /ready, port: http}
            periodSeconds: 5
          livenessProbe:
            httpGet: {path: /health, port: http}""" if rng.random() < 0.8 else ""
    env = "".join(f"""
            - name: SETTING_{index}
              value: "value-{index}\"""" for index in range(rng.randint(2, 8)))
    return [
        ("serviceaccount.yaml", f"""apiVersion: v1
kind: ServiceAccount
{metadata(name)}automountServiceAccountToken: false
"""),
        ("configmap.yaml", f"""apiVersion: v1
kind: ConfigMap
{metadata(f'{name}-config')}data:
  LOG_LEVEL: info
  FEATURE_FLAGS: "search,checkout,recommendations"
  config.json: |
    {{"port": {port}, "upstream": "http://{name}-api:{port}", "timeoutMs": 2500}}
"""),
        ("service.yaml", f"""apiVersion: v1
kind: Service
{metadata(name)}spec:
  type: ClusterIP
  selector:
    {selector.replace(chr(10) + '      ', chr(10) + '    ')}
  ports:
    - name: http
      port: 80
      targetPort: http
"""),
        ("deployment.yaml", f"""apiVersion: apps/v1
kind: Deployment
{metadata(name)}spec:
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 0, maxSurge: 1}}
  selector:
    matchLabels:
      {selector}
  template:
    metadata:
      labels:
        {selector.replace(chr(10) + '      ', chr(10) + '        ')}
      annotations:
        checksum/config: {rng.getrandbits(128):032x}
    spec:
      serviceAccountName: {name}
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        fsGroup: 10001
      containers:
        - name: app
          image: registry.example.com/shop/{name}:{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}
          imagePullPolicy: IfNotPresent
          ports:
            - name: http
              containerPort: {port}
              protocol: TCP
          env:{env}
          envFrom:
            - configMapRef: {{name: {name}-config}}
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{cpu: 500m, memory: 256Mi}}{probes}{security}
          volumeMounts:
            - {{name: tmp, mountPath: /tmp}}
      volumes:
        - name: tmp
          emptyDir: {{sizeLimit: 64Mi}}
"""),
        ("hpa.yaml", f"""apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
{metadata(name)}spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  minReplicas: {rng.choice([1, 2, 3])}
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {{type: Utilization, averageUtilization: 70}}
"""),
        ("pdb.yaml", f"""apiVersion: policy/v1
kind: PodDisruptionBudget
{metadata(name)}spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {selector}
"""),
        ("networkpolicy.yaml", f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
{metadata(name)}spec:
  podSelector:
    matchLabels:
      {selector}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels: {{app.kubernetes.io/part-of: shop}}
      ports:
        - {{port: http, protocol: TCP}}
"""),
        ("ingress.yaml", f"""apiVersion: networking.k8s.io/v1
kind: Ingress
{metadata(name)}  annotations:
    cert-manager.io/cluster-issuer: letsencrypt
spec:
  ingressClassName: nginx
  tls:
    - hosts: [{name}.{namespace}.example.com]
      secretName: {name}-tls
  rules:
    - host: {name}.{namespace}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {name}
                port: {{name: http}}
"""),
        ("externalsecret.yaml", f"""apiVersion: external-secrets.io/v1
kind: ExternalSecret
{metadata(f'{name}-db')}spec:
  refreshInterval: 1h
  secretStoreRef: {{name: vault, kind: ClusterSecretStore}}
  target: {{name: {name}-db}}
  data:
    - secretKey: password
      remoteRef: {{key: shop/{name}/db, property: password}}
"""),
        ("tests/test-connection.yaml", f"""apiVersion: v1
kind: ConfigMap
{metadata(f'{name}-tests')}data:
  run.sh: |
    wget -q -O- http://{name}:80/health
"""),
    ]


def generate(directory: Path, objects: int, seed: int = 7,
             releases_per_namespace: int = RELEASES_PER_NAMESPACE) -> list[Path]:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for index in range(max(1, objects // OBJECTS_PER_RELEASE)):
        name = f"svc{index:05d}"
        namespace = f"team{index // releases_per_namespace:03d}"
        documents = [f"---\n# Source: {name}/templates/{template}\n{body}"
                     for template, body in release(name, namespace, rng)]
        path = directory / namespace / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(documents))
        files.append(path)
    return files


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--objects", type=int, default=5000)
    arguments = parser.parse_args()
    written = generate(arguments.directory, arguments.objects)
    print(f"wrote {len(written)} files, {len(written) * OBJECTS_PER_RELEASE} objects, to {arguments.directory}")
