//! The SabIA Labs surface (`../shared/seeds/sabia-labs-api.md`): paths under `/v1/`, every
//! answer in the `{"success", "message"?, "data"}` envelope, errors as
//! `{"success": false, "error": {"code", "message", "details"?}}` with the contract's codes.
//!
//! Mounted: auth (register, login, forgot/reset password, verify email), teams and members,
//! plans, plan change and billing, team API keys, dashboard, usage logs and stats, webhooks
//! (their secret encrypted at rest; `usage_limit_reached` delivered by `domain::webhooks`,
//! `payment_failed` never emitted: there is no payment provider). `/v1/ocr` and
//! `/v1/recognition` are gateway routes (metered per request).
//!
//! Costs are the billed amounts in BRL (catalog price × FX × markup, see `pricing`).
//!
//! Deviation: the contract lists API keys with their full plaintext. catraca stores only a
//! SHA-256, so the plaintext is returned once, at creation; lists show the display prefix
//! (`sk-1234...`), as the contract's own dashboard samples do.
//!
//! This module is the route table only; [`handlers`] parse, call `crate::domain` and render
//! with [`wire`].

pub mod handlers;
pub mod wire;

use axum::routing::{delete, get, patch, post, put};

use crate::admin::AdminState;
use crate::admin::openapi::Api;
use handlers::*;

/// SabIA's routes.
pub fn api() -> Api<AdminState> {
    Api::new("sabia")
        .route(
            "POST",
            "/v1/auth/register",
            "Cadastro de usuário",
            false,
            post(register),
        )
        .route("POST", "/v1/auth/login", "Login", false, post(login))
        .route(
            "POST",
            "/v1/auth/forgot-password",
            "Recuperação de senha",
            false,
            post(forgot_password),
        )
        .route(
            "POST",
            "/v1/auth/reset-password",
            "Redefinir senha",
            false,
            post(reset_password),
        )
        .route(
            "POST",
            "/v1/auth/verify-email",
            "Verificar email",
            false,
            post(verify_email),
        )
        .route(
            "GET",
            "/v1/teams",
            "Listar times do usuário",
            true,
            get(list_teams),
        )
        .route("POST", "/v1/teams", "Criar time", true, post(create_team))
        .route(
            "GET",
            "/v1/teams/{teamId}",
            "Obter detalhes do time",
            true,
            get(team_detail),
        )
        .route(
            "POST",
            "/v1/teams/{teamId}/members",
            "Adicionar membro ao time",
            true,
            post(add_member),
        )
        .route(
            "DELETE",
            "/v1/teams/{teamId}/members/{userId}",
            "Remover membro do time",
            true,
            delete(remove_member),
        )
        .route(
            "GET",
            "/v1/plans",
            "Listar planos disponíveis",
            false,
            get(list_plans),
        )
        .route(
            "PUT",
            "/v1/teams/{teamId}/plan",
            "Alterar plano do time",
            true,
            put(change_plan),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/billing",
            "Obter informações de cobrança",
            true,
            get(billing),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/api-keys",
            "Listar API keys",
            true,
            get(list_keys),
        )
        .route(
            "POST",
            "/v1/teams/{teamId}/api-keys",
            "Criar API key",
            true,
            post(create_key),
        )
        .route(
            "PUT",
            "/v1/teams/{teamId}/api-keys/{keyId}",
            "Atualizar API key",
            true,
            put(update_key),
        )
        .route(
            "PATCH",
            "/v1/teams/{teamId}/api-keys/{keyId}/status",
            "Ativar/desativar API key",
            true,
            patch(key_status),
        )
        .route(
            "DELETE",
            "/v1/teams/{teamId}/api-keys/{keyId}",
            "Deletar API key",
            true,
            delete(delete_key),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/dashboard",
            "Obter dados do dashboard",
            true,
            get(dashboard),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/usage-logs",
            "Obter logs de uso",
            true,
            get(usage_logs),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/usage-stats",
            "Obter estatísticas de uso",
            true,
            get(usage_stats),
        )
        .route(
            "POST",
            "/v1/teams/{teamId}/webhooks",
            "Configurar webhook",
            true,
            post(create_webhook),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/webhooks",
            "Listar webhooks",
            true,
            get(list_webhooks),
        )
}
