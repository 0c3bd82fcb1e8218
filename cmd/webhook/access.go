package main

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// checkAccess asks the API server who the webhook is and whether it may
// list StaticRoutes, so that credentials it cannot use stop it with a
// sentence naming the identity and what was refused, not with
// controller-runtime's "failed to get server groups: unknown". An API
// server that cannot be reached is no verdict on the credentials: the
// manager retries then.
func checkAccess(ctx context.Context, cfg *rest.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server at %s did not accept the webhook's credentials (%s): %w; give it a valid kubeconfig, or run it with its ServiceAccount's token", cfg.Host, credentialSource(cfg), err)
	case err != nil:
		return nil
	}
	who := review.Status.UserInfo.Username
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	gvr := schema.GroupVersionResource{Group: v1.GroupVersion.Group, Version: v1.GroupVersion.Version, Resource: "staticroutes"}
	_, err = dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("the API server refused %s the list of StaticRoutes: %w; bind it to the ClusterRole staticroute-webhook (config/rbac)", who, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("the API server at %s has no StaticRoute kind: install the CRDs first (config/crd): %w", cfg.Host, err)
	}
	return nil
}

// credentialSource says where the credentials came from, without them.
func credentialSource(cfg *rest.Config) string {
	switch {
	case cfg.BearerTokenFile != "":
		return "the token in " + cfg.BearerTokenFile
	case cfg.BearerToken != "":
		return "a bearer token"
	case cfg.CertFile != "" || len(cfg.CertData) > 0:
		return "a client certificate"
	case cfg.Username != "":
		return "the user " + cfg.Username
	}
	return "no credentials"
}
