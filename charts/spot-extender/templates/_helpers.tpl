{{- define "spot-extender.namespace" -}}
{{- .Values.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* The app.kubernetes.io/name label: the kustomize base's spot-extender unless nameOverride. */}}
{{- define "spot-extender.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Every object's name (and prefix of the others). Not prefixed with the release name, unlike
most charts: names stay those of k8s/, whatever the release is called. */}}
{{- define "spot-extender.fullname" -}}
{{- .Values.fullnameOverride | default (include "spot-extender.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "spot-extender.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spot-extender.name" . }}
{{- end -}}

{{- define "spot-extender.labels" -}}
{{ include "spot-extender.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "spot-extender.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The webhook with spot-extender's own CA and certificate: no tls Secret of the user's. */}}
{{- define "spot-extender.selfManagedCerts" -}}
{{- if and .Values.webhook.enabled (not .Values.tls.enabled) }}true{{ end -}}
{{- end -}}

{{- define "spot-extender.scheme" -}}
{{- if or .Values.tls.enabled (include "spot-extender.selfManagedCerts" .) }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{/* The Service's in-cluster name, which every certificate is issued for. */}}
{{- define "spot-extender.serviceHost" -}}
{{- printf "%s.%s.svc" (include "spot-extender.fullname" .) (include "spot-extender.namespace" .) -}}
{{- end -}}

{{/* The names (and fixed ClusterIP) the self-managed serving certificate is for. */}}
{{- define "spot-extender.certHosts" -}}
{{- $svc := include "spot-extender.serviceHost" . -}}
{{- $hosts := list $svc (printf "%s.cluster.local" $svc) -}}
{{- with .Values.service.clusterIP }}{{ $hosts = append $hosts . }}{{ end -}}
{{- join "," $hosts -}}
{{- end -}}

{{/* Namespaces left alone, as a JSON list: the webhook's selector and --excluded-namespaces
must agree, and both always hold spot-extender's own namespace. */}}
{{- define "spot-extender.excludedNamespaces" -}}
{{- toJson (uniq (append .Values.webhook.excludedNamespaces (include "spot-extender.namespace" .))) -}}
{{- end -}}

{{/* The flag, only when the list is not the server's default: k8s/ leaves it out too. */}}
{{- define "spot-extender.excludedNamespacesFlag" -}}
{{- $excluded := include "spot-extender.excludedNamespaces" . | fromJsonArray | join "," -}}
{{- if ne $excluded "kube-system" }}--excluded-namespaces={{ $excluded }}{{ end -}}
{{- end -}}
